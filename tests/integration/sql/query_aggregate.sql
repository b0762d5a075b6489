-- Aggregations with IoTDB names, result types and null semantics, over paths, wildcards and
-- filters, on data written out of order, overwritten and partly deleted.
CREATE DATABASE root.agg;
CREATE TIMESERIES root.agg.d1.i INT32;
CREATE TIMESERIES root.agg.d1.l INT64;
CREATE TIMESERIES root.agg.d1.f FLOAT;
CREATE TIMESERIES root.agg.d1.d DOUBLE;
CREATE TIMESERIES root.agg.d1.b BOOLEAN;
CREATE TIMESERIES root.agg.d1.t TEXT;
CREATE TIMESERIES root.agg.d1.s STRING;
CREATE TIMESERIES root.agg.d1.dt DATE;
CREATE TIMESERIES root.agg.d2.i INT32;
CREATE TIMESERIES root.agg.d2.d DOUBLE;
CREATE TIMESERIES root.agg.empty.d DOUBLE;
-- Out of order: 5 before 1..4; null cells leave gaps.
INSERT INTO root.agg.d1(timestamp, i, l, f, d, b, t, s, dt) VALUES (5, 50, 500, 5.5, -9.25, true, 'e', 'echo', '2024-05-05');
INSERT INTO root.agg.d1(timestamp, i, l, f, d, b, t, s, dt) VALUES (1, 10, 100, 1.5, 2.5, false, 'a', 'alpha', '2024-01-01'), (2, -20, null, 2.5, null, true, 'b', 'bravo', null), (3, 30, 300, null, 9.25, null, null, 'charlie', '2024-03-03');
INSERT INTO root.agg.d1(timestamp, i, d) VALUES (4, 40, 4.0);
-- Overwrite: time 2 of i becomes 20, time 4 of d becomes -4.0.
INSERT INTO root.agg.d1(timestamp, i) VALUES (2, 20);
INSERT INTO root.agg.d1(timestamp, d) VALUES (4, -4.0);
INSERT INTO root.agg.d2(timestamp, i, d) VALUES (1, 1, 1.0), (2, 2, 2.0), (3, 3, 3.0), (10, 100, 100.0);
SELECT * FROM root.agg.d1;
SELECT count(i), sum(i), avg(i), min_value(i), max_value(i), extreme(i), first_value(i), last_value(i), min_time(i), max_time(i) FROM root.agg.d1;
SELECT count(d), sum(d), avg(d), min_value(d), max_value(d), extreme(d), first_value(d), last_value(d) FROM root.agg.d1;
SELECT count(l), sum(l), min_value(f), max_value(f), extreme(f), avg(f) FROM root.agg.d1;
SELECT count(b), first_value(b), last_value(b), count(t), first_value(t), last_value(t), min_time(t), max_time(t) FROM root.agg.d1;
SELECT min_value(s), max_value(s), first_value(dt), min_value(dt), max_value(dt) FROM root.agg.d1;
-- Function names keep the case they were written in, as in IoTDB's column names.
SELECT COUNT(i), Max_Value(d) FROM root.agg.d1;
-- Wildcards: one column per series, in path order.
SELECT count(*) FROM root.agg.d1;
SELECT count(*) FROM root.agg.**;
SELECT max_time(*), sum(d) FROM root.agg.*;
SELECT count(root.agg.d2.i), sum(root.agg.d1.i) FROM root;
-- No data: COUNT is 0, everything else null.
SELECT count(d), sum(d), avg(d), min_value(d), first_value(d), min_time(d) FROM root.agg.empty;
SELECT count(i), avg(i) FROM root.agg.d1 WHERE time > 100;
-- Time and value filters.
SELECT count(i), sum(i), min_time(i) FROM root.agg.d1 WHERE time >= 2 AND time <= 4;
SELECT count(i), sum(i) FROM root.agg.d1 WHERE time < 2 OR time > 4;
SELECT count(i), sum(i), first_value(i) FROM root.agg.d1 WHERE d > 0;
SELECT count(i), count(d) FROM root.agg.d1 WHERE d IS NULL;
SELECT count(i) FROM root.agg.d1 WHERE i > 10 AND f < 3;
SELECT count(i), sum(d) FROM root.agg.* WHERE i >= 2;
-- Expressions over aggregates, aliases.
SELECT sum(i) / count(i), count(i) + count(d) AS n, -max_value(d) FROM root.agg.d1;
SELECT avg(i) AS mean FROM root.agg.d1;
-- Deleted ranges leave the aggregation.
DELETE FROM root.agg.d1.i WHERE time >= 2 AND time <= 3;
SELECT count(i), sum(i), first_value(i), min_time(i), max_value(i) FROM root.agg.d1;
DELETE FROM root.agg.d1.* WHERE time <= 1;
SELECT count(*) FROM root.agg.d1;
-- A write after a deletion is visible again.
INSERT INTO root.agg.d1(timestamp, i) VALUES (2, 7);
SELECT count(i), sum(i), first_value(i) FROM root.agg.d1;
-- Wrong use is refused with IoTDB's semantic error code.
SELECT sum(t) FROM root.agg.d1;
SELECT avg(b) FROM root.agg.d1;
SELECT max_value(b) FROM root.agg.d1;
SELECT count(i), d FROM root.agg.d1;
SELECT count(i) FROM root.agg.d1 WHERE count(d) > 1;
SELECT median(i) FROM root.agg.d1;
SELECT count(i + 1) FROM root.agg.d1;
SELECT count(*) AS c FROM root.agg.d1;
SELECT count(nosuch) FROM root.agg.d1;
