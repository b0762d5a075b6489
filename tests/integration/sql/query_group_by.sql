-- Down-sampling: GROUP BY time windows ([s, e) and (s, e], sliding steps, units, calendar months,
-- time zones), GROUP BY LEVEL alone and with windows, empty windows, HAVING, FILL, ordering and paging.
CREATE DATABASE root.gb;
CREATE TIMESERIES root.gb.a.d.s INT32;
CREATE TIMESERIES root.gb.a.d.x DOUBLE;
CREATE TIMESERIES root.gb.b.d.s INT32;
CREATE TIMESERIES root.gb.b.e.s INT32;
CREATE TIMESERIES root.gb.b.d.t TEXT;
INSERT INTO root.gb.a.d(timestamp, s, x) VALUES (1, 1, 1.0), (2, 2, null), (3, 3, 3.0), (7, 7, 7.0), (8, 8, null), (12, 12, 12.0);
INSERT INTO root.gb.b.d(timestamp, s, t) VALUES (1, 10, 'p'), (5, 50, null), (9, 90, 'q');
INSERT INTO root.gb.b.e(timestamp, s) VALUES (2, 100), (11, 110);
-- Half-open windows [s, e): shown at their start; empty windows count 0, everything else null.
SELECT count(s), sum(s), first_value(s), max_time(s) FROM root.gb.a.d GROUP BY ([0, 15), 3ms);
-- Left-open windows (s, e]: shown at their end; the last window is cut at the end.
SELECT count(s), sum(s) FROM root.gb.a.d GROUP BY ((0, 14], 5ms);
-- Sliding step shorter (overlapping windows) and longer (gaps) than the interval.
SELECT count(s), min_value(s), max_value(s) FROM root.gb.a.d GROUP BY ([0, 12), 4ms, 2ms);
SELECT count(s), last_value(s) FROM root.gb.a.d GROUP BY ([0, 12), 2ms, 5ms);
-- Without a range the windows span the selected data.
SELECT count(s) FROM root.gb.a.d GROUP BY (5ms);
SELECT count(s) FROM root.gb.a.d WHERE time >= 3 GROUP BY (4ms);
-- WHERE filters the points; every window of the range is still shown.
SELECT count(s), avg(x) FROM root.gb.a.d WHERE x IS NOT NULL GROUP BY ([0, 15), 5ms);
SELECT count(s) FROM root.gb.a.d WHERE time > 2 AND time < 9 GROUP BY ([0, 15), 5ms);
-- Several series and expressions over window aggregates.
SELECT count(s), sum(x) / count(x) FROM root.gb.a.d GROUP BY ([0, 15), 5ms);
SELECT count(*) FROM root.gb.** GROUP BY ([0, 12), 6ms);
-- ORDER BY TIME DESC, LIMIT/OFFSET and SLIMIT/SOFFSET over windows.
SELECT count(s) FROM root.gb.a.d GROUP BY ([0, 15), 3ms) ORDER BY TIME DESC;
SELECT count(s) FROM root.gb.a.d GROUP BY ([0, 15), 3ms) LIMIT 2 OFFSET 1;
SELECT count(s) FROM root.gb.a.d GROUP BY ([0, 15), 3ms) ORDER BY TIME DESC LIMIT 2;
SELECT count(*) FROM root.gb.** GROUP BY ([0, 12), 6ms) SLIMIT 2 SOFFSET 1;
-- HAVING on aggregates, also ones not selected.
SELECT count(s), sum(s) FROM root.gb.a.d GROUP BY ([0, 15), 3ms) HAVING count(s) > 1;
SELECT sum(s) FROM root.gb.a.d GROUP BY ([0, 15), 3ms) HAVING count(x) >= 1 AND sum(s) < 20;
SELECT count(s) FROM root.gb.a.d GROUP BY ([0, 15), 3ms) HAVING count(s) > 0 LIMIT 1 OFFSET 1;
-- FILL over empty windows and nulls.
SELECT sum(s), first_value(x) FROM root.gb.a.d GROUP BY ([0, 15), 3ms) FILL(PREVIOUS);
SELECT avg(s) FROM root.gb.a.d GROUP BY ([0, 15), 3ms) FILL(LINEAR);
SELECT avg(s), first_value(s) FROM root.gb.a.d GROUP BY ([0, 18), 3ms) FILL(LINEAR);
SELECT sum(s), count(s), first_value(t) FROM root.gb.b.d GROUP BY ([0, 12), 3ms) FILL(0);
SELECT first_value(t), sum(s) FROM root.gb.b.d GROUP BY ([0, 12), 3ms) FILL('none');
SELECT sum(s) FROM root.gb.a.d GROUP BY ([0, 15), 3ms) FILL(1.5);
SELECT sum(s) FROM root.gb.a.d GROUP BY ([0, 15), 3ms) FILL(PREVIOUS, 3ms);
SELECT sum(s) FROM root.gb.a.d GROUP BY ([0, 15), 3ms) FILL(PREVIOUS, 2ms);
SELECT sum(s) FROM root.gb.a.d GROUP BY ([0, 15), 3ms) ORDER BY TIME DESC FILL(PREVIOUS);
-- FILL on raw rows.
SELECT s, x FROM root.gb.a.d FILL(PREVIOUS);
SELECT s, x FROM root.gb.a.d FILL(LINEAR);
SELECT s, x FROM root.gb.a.d FILL(-1);
-- GROUP BY LEVEL: nodes at the level(s) kept, the rest replaced by *, measurement kept.
SELECT count(s) FROM root.gb.** GROUP BY LEVEL = 2;
SELECT count(s), sum(s), max_value(s), first_value(s), last_value(s), min_time(s), avg(s) FROM root.gb.** GROUP BY LEVEL = 3;
SELECT count(*) FROM root.gb.** GROUP BY LEVEL = 1;
SELECT count(s) FROM root.gb.** GROUP BY LEVEL = 2, 3;
SELECT count(s) FROM root.gb.** GROUP BY ([0, 12), 4ms), LEVEL = 2;
SELECT count(s) FROM root.gb.** GROUP BY LEVEL = 2 HAVING count(s) > 3;
SELECT count(s) FROM root.gb.b.d WHERE s > 20 GROUP BY LEVEL = 1;
-- A wildcard condition must hold for every series it names (IoTDB joins them with AND).
SELECT count(s) FROM root.gb.b.* WHERE s > 20 GROUP BY LEVEL = 1;
-- Units and calendar months. Months are counted on the calendar of the session's time zone (UTC
-- in these files; tests/python/test_query.py covers +08:00 sessions).
CREATE TIMESERIES root.gb.cal.v INT64;
INSERT INTO root.gb.cal(timestamp, v) VALUES (2024-01-31T12:00:00Z, 1), (2024-02-15T00:00:00Z, 2), (2024-02-29T23:00:00Z, 3), (2024-03-01T00:00:00Z, 4), (2024-04-30T08:00:00Z, 5);
-- From the 31st: the next windows start on the last day of shorter months.
SELECT count(v), sum(v) FROM root.gb.cal GROUP BY ([2024-01-31T00:00:00Z, 2024-05-01T00:00:00Z), 1mo);
SELECT count(v) FROM root.gb.cal GROUP BY ([2024-01-01T00:00:00Z, 2024-07-01T00:00:00Z), 1mo, 2mo);
SELECT count(v) FROM root.gb.cal GROUP BY ([2024-01-01T00:00:00Z, 2025-01-01T00:00:00Z), 1y);
SELECT count(v) FROM root.gb.cal GROUP BY ((2024-01-01T00:00:00Z, 2024-05-01T00:00:00Z], 1mo);
SELECT count(v) FROM root.gb.cal GROUP BY ([2024-02-01T00:00:00Z, 2024-03-01T00:00:00Z), 1w);
SELECT count(v) FROM root.gb.cal GROUP BY ([2024-02-29T00:00:00Z, 2024-03-01T01:00:00Z), 12h);
SELECT count(v) FROM root.gb.cal GROUP BY ([2024-02-29T22:00:00Z, 2024-02-29T23:00:00Z), 30m, 15m);
SELECT count(v) FROM root.gb.cal GROUP BY ([2024-02-29T22:59:59Z, 2024-02-29T23:00:01Z), 1s);
SELECT count(v) FROM root.gb.cal GROUP BY ([2024-01-01T00:00:00Z, 2024-04-01T00:00:00Z), 1d) HAVING count(v) > 0;
-- A time literal with an offset names an instant; +08:00 midnight is 16:00 UTC the day before.
SELECT count(v) FROM root.gb.cal GROUP BY ([2024-02-29T08:00:00+08:00, 2024-03-02T08:00:00+08:00), 1d);
-- Mistakes.
SELECT s FROM root.gb.a.d GROUP BY ([0, 10), 2ms);
SELECT count(s) FROM root.gb.a.d GROUP BY ([0, 10], 2ms);
SELECT count(s) FROM root.gb.a.d GROUP BY ([10, 0), 2ms);
SELECT count(s) FROM root.gb.a.d GROUP BY ([0, 10), 0ms);
SELECT count(s) FROM root.gb.a.d GROUP BY ([0, 10), 2xs);
SELECT count(s) FROM root.gb.a.d GROUP BY ([0, 9223372036854775807), 1ms);
SELECT count(s) FROM root.gb.a.d GROUP BY ([0, 9223372036854775807), 1ms) LIMIT 2;
SELECT s FROM root.gb.a.d HAVING s > 1;
SELECT max_value(*) FROM root.gb.b.** GROUP BY LEVEL = 1;
