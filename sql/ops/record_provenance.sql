-- what a run is made of: its inputs, the code and libraries that ran, the seed and the device
update ops.runs
set inputs_digest = $inputs_digest,
    input_files = $input_files,
    code_version = $code_version,
    library_versions = $library_versions,
    seed = $seed,
    device = $device
where run_id = $run_id;
