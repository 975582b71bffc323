-- `staged_results` is a registered frame of one run's expectation results for one day
insert into ops.validation_results by name select * from staged_results;
