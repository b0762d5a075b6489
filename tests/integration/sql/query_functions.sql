-- Built-in scalar functions (math, CAST, strings) and LIKE / REGEXP, as IoTDB 1.3 names and types them.
-- (No text with spaces at either end: the CLI's tables do not show them; TRIM has a unit test.)
CREATE TIMESERIES root.fn.d.i INT32;
CREATE TIMESERIES root.fn.d.x DOUBLE;
CREATE TIMESERIES root.fn.d.t TEXT;
INSERT INTO root.fn.d(time, i, x, t) VALUES (1, -3, 2.345, 'warning: hot');
INSERT INTO root.fn.d(time, i, x, t) VALUES (2, 4, -0.5, 'ok');
INSERT INTO root.fn.d(time, i, x, t) VALUES (3, 0, 16, 'Trimmed');
SELECT abs(i), sign(i), sqrt(x), round(x, 2), round(x), ceil(x), floor(x) FROM root.fn.d;
SELECT sin(x), cos(x), exp(i), ln(x), log10(x), degrees(x), radians(x) FROM root.fn.d WHERE time = 3;
SELECT abs(x) + 1, -abs(i) FROM root.fn.d;
SELECT CAST(x AS INT32), CAST(i AS TEXT), CAST(i AS BOOLEAN), CAST(x AS TEXT) FROM root.fn.d;
SELECT CAST(t AS DOUBLE) FROM root.fn.d WHERE time = 2;
SELECT length(t), upper(t), lower(t), trim(t) FROM root.fn.d;
SELECT string_contains(t, 's'='hot'), startswith(t, 'target'='war'), endswith(t, 'target'='ok'), replace(t, 'o', '0') FROM root.fn.d;
SELECT t FROM root.fn.d WHERE t LIKE 'warn%';
SELECT t FROM root.fn.d WHERE t LIKE '_k';
SELECT t FROM root.fn.d WHERE t NOT LIKE '%o%';
SELECT t FROM root.fn.d WHERE t REGEXP '^[a-z]+$';
SELECT t FROM root.fn.d WHERE string_matches(t, 'regex'='hot$');
SELECT i FROM root.fn.d WHERE abs(i) > 2;
SELECT abs(min_value(i)), round(avg(x), 1), -abs(sum(i)) FROM root.fn.d;
SELECT max_value(i) FROM root.fn.d HAVING abs(max_value(i)) > 3;
SELECT last_value(t) FROM root.fn.d HAVING last_value(t) = 'Trimmed';
SELECT upper(max_value(i)) FROM root.fn.d;
SELECT abs(i) FROM root.fn.d ALIGN BY DEVICE;
-- The variance family and TIME_DURATION, from points in memory and (after FLUSH) in a file.
SELECT stddev(x), variance(x), stddev_pop(x), var_pop(x), time_duration(x) FROM root.fn.d;
FLUSH;
SELECT stddev(x), variance(x), stddev_pop(x), var_pop(x), time_duration(x) FROM root.fn.d;
SELECT stddev(i), var_pop(i), count(i) FROM root.fn.d GROUP BY ([1, 5), 2ms);
SELECT stddev(t) FROM root.fn.d;
SELECT sin(t) FROM root.fn.d;
SELECT upper(i) FROM root.fn.d;
SELECT i FROM root.fn.d WHERE i LIKE '1%';
SELECT t FROM root.fn.d WHERE t REGEXP '(';
SELECT round(x, 'two') FROM root.fn.d;
SELECT CAST(x AS NUMBER) FROM root.fn.d;
SELECT nosuch(x) FROM root.fn.d;
