-- Databases and time series: creation, listing, counting, conflicts, dropping.
CREATE DATABASE root.ln;
CREATE DATABASE root.ln;
CREATE DATABASE root.ln.wf01;
SET STORAGE GROUP TO root.sg2;
SHOW DATABASES;
CREATE TIMESERIES root.ln.wf01.wt01.status WITH DATATYPE=BOOLEAN, ENCODING=PLAIN;
CREATE TIMESERIES root.ln.wf01.wt01.temperature(temp) WITH DATATYPE=FLOAT, ENCODING=RLE, COMPRESSOR=SNAPPY TAGS(unit=celsius) ATTRIBUTES(owner='ops');
CREATE TIMESERIES root.ln.wf02.wt02.hardware TEXT ENCODING=PLAIN;
CREATE TIMESERIES root.ln.wf02.wt02.hardware INT32;
CREATE TIMESERIES root.nodb.d.s INT32;
CREATE TIMESERIES root.ln.wf01.wt01.bad WITH DATATYPE=FLOAT, ENCODING=NOPE;
CREATE ALIGNED TIMESERIES root.ln.gps(lat FLOAT encoding=PLAIN compressor=SNAPPY, lon DOUBLE, at TIMESTAMP, day DATE, tag STRING, raw BLOB, n INT64, ok BOOLEAN);
CREATE TIMESERIES root.ln.gps.extra INT32;
SHOW TIMESERIES;
SHOW TIMESERIES root.ln.wf01.**;
SHOW TIMESERIES root.ln.** LIMIT 2 OFFSET 1;
SHOW DEVICES;
COUNT TIMESERIES;
COUNT TIMESERIES root.ln.gps.*;
COUNT DEVICES;
COUNT DATABASES;
DROP TIMESERIES root.ln.wf02.**;
DROP TIMESERIES root.ln.wf02.**;
SHOW DEVICES root.ln.**;
DELETE DATABASE root.sg2;
DELETE DATABASE root.sg2;
SHOW DATABASES root.**;
SET TTL TO root.ln 3600000;
SHOW TTL;
UNSET TTL TO root.ln;
SHOW ALL TTL;
-- An insert may name a series by its alias (as in IoTDB): the value goes to the series, typed as it.
INSERT INTO root.ln.wf01.wt01(timestamp, temp) VALUES (1, 21);
SELECT temperature FROM root.ln.wf01.wt01;
COUNT TIMESERIES root.ln.wf01.**;
-- A TTL on a database may be written as IoTDB 1.3 shows it, with .**; no other wildcard.
SET TTL TO root.ln.** 7200000;
SHOW TTL;
UNSET TTL TO root.ln.**;
SET TTL TO root.ln.*.wt01 1000;
SHOW TTL;
-- Device-level TTL (IoTDB 1.3.3): a device, the devices below a path, root.**, and INF to keep
-- a device's data where a broader rule would expire it; the most precise rule decides.
SET TTL TO root.** 86400000;
SET TTL TO root.ln.wf01.** 3600000;
SET TTL TO root.ln.gps INF;
SET TTL TO root.nodb.d 60000;
SHOW TTL;
SHOW TTL ON root.ln.**;
SHOW DEVICES;
UNSET TTL FROM root.ln.wf01.**;
UNSET TTL TO root.nothere.**;
SHOW DEVICES root.ln.**;
SET TTL TO root 1000;
SET TTL TO root.ln.wf01.wt01 -5;
UNSET TTL FROM root.**;
UNSET TTL FROM root.ln.gps;
UNSET TTL FROM root.nodb.d;
SHOW TTL;
-- Set while root.later is no database, a TTL is a rule; once it is one, SET TTL sets the
-- database's TTL, and the newer of the two decides (UNSET too).
SET TTL TO root.later.** 3600000;
INSERT INTO root.later.d(timestamp, s) VALUES (1, 1);
SET TTL TO root.later 7200000;
SHOW TTL ON root.later;
SHOW DEVICES root.later.**;
UNSET TTL TO root.later;
SHOW TTL ON root.later.**;
SHOW DEVICES root.later.**;
-- ALTER TIMESERIES: tags, attributes and alias, each form and what IoTDB refuses.
ALTER TIMESERIES root.ln.wf01.wt01.temperature ADD TAGS loc=north, floor=3;
ALTER TIMESERIES root.ln.wf01.wt01.temperature ADD TAGS unit=kelvin;
ALTER TIMESERIES root.ln.wf01.wt01.temperature ADD ATTRIBUTES vendor=acme;
ALTER TIMESERIES root.ln.wf01.wt01.temperature RENAME floor TO level;
ALTER TIMESERIES root.ln.wf01.wt01.temperature RENAME nothere TO x;
ALTER TIMESERIES root.ln.wf01.wt01.temperature RENAME level TO loc;
ALTER TIMESERIES root.ln.wf01.wt01.temperature SET loc=south, owner='plant 2';
ALTER TIMESERIES root.ln.wf01.wt01.temperature SET nothere=1;
SHOW TIMESERIES root.ln.wf01.wt01.temperature;
SHOW TIMESERIES root.ln.** WHERE TAGS(loc) = 'south';
ALTER TIMESERIES root.ln.wf01.wt01.temperature DROP level, vendor, nothere;
ALTER TIMESERIES root.ln.wf01.wt01.temperature UPSERT ALIAS=t2 TAGS(unit=c, kind=air) ATTRIBUTES(owner=ops);
SHOW TIMESERIES root.ln.wf01.wt01.temperature;
SELECT t2 FROM root.ln.wf01.wt01;
ALTER TIMESERIES root.ln.wf01.wt01.status UPSERT ALIAS=t2;
ALTER TIMESERIES root.ln.wf01.wt01.status UPSERT ALIAS=temperature;
ALTER TIMESERIES root.ln.wf01.wt01.nothere ADD TAGS a=b;
ALTER TIMESERIES root.ln.wf01.wt01.status UPSERT;
ALTER TIMESERIES root.ln.wf01.wt01.status ADD LABELS a=b;
-- An encoding the type does not take is refused, as IoTDB 1.3 does.
CREATE TIMESERIES root.ln.enc.a TEXT ENCODING=RLE;
CREATE TIMESERIES root.ln.enc.b BOOLEAN ENCODING=TS_2DIFF;
CREATE TIMESERIES root.ln.enc.c INT32 ENCODING=GORILLA;
CREATE TIMESERIES root.ln.enc.d DOUBLE ENCODING=ZIGZAG;
CREATE TIMESERIES root.ln.enc.e FLOAT ENCODING=DIFF;
CREATE TIMESERIES root.ln.enc.f TEXT ENCODING=DICTIONARY;
CREATE ALIGNED TIMESERIES root.ln.enc2(x INT64 encoding=RLE, y TEXT encoding=TS_2DIFF);
SHOW TIMESERIES root.ln.enc*.*;
