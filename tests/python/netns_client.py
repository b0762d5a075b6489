"""Runs inside a network namespace: writes or reads through the official client, prints JSON.

Usage: python netns_client.py HOST PORT write DEVICE START COUNT VALUE_OFFSET
       python netns_client.py HOST PORT dump
"""

import json
import sys

from iotdb.Session import Session
from iotdb.utils.IoTDBConstants import TSDataType
from iotdb.utils.Tablet import Tablet

host, port, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = Session(host, port, "root", "root", fetch_size=7)
s.open(False)
if cmd == "write":
    device, start, count, offset = sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
    times = list(range(start, start + count))
    rows = [[float(t) + offset, int(t)] for t in times]
    s.insert_tablet(Tablet(device, ["temperature", "counter"], [TSDataType.DOUBLE, TSDataType.INT64], rows, times))
    print(json.dumps({"written": count}))
elif cmd == "dump":
    ds = s.execute_query_statement("select * from root.**")
    cols = ds.get_column_names()
    rows = []
    while ds.has_next():
        r = ds.next()
        rows.append([r.get_timestamp()] + [None if f.get_data_type() is None else str(f.get_object_value(f.get_data_type())) for f in r.get_fields()])
    ds.close_operation_handle()
    print(json.dumps({"columns": cols, "rows": rows}))
s.close()
