// DuetDB's description of the IoTDB client RPC surface.
//
// Written by the DuetDB developers from the documented wire facts (field ids, types and method
// names of IoTDB's client protocol); see shared/reference/iotdb-client-protocol.md.
// Every field is declared optional on purpose: real clients omit fields that IoTDB's own IDL calls
// required (e.g. zoneId), and a server must stay lenient about what it accepts.

namespace rs duet

struct Endpoint {
  1: optional string ip
  2: optional i32 port
}

struct Status {
  1: optional i32 code
  2: optional string message
  3: optional list<Status> subStatus
  4: optional Endpoint redirectNode
  5: optional bool needRetry
  6: optional binary responseData
}

struct OpenSessionReq {
  1: optional i32 clientProtocol
  2: optional string zoneId
  3: optional string username
  4: optional string password
  5: optional map<string, string> configuration
}

struct OpenSessionResp {
  1: optional Status status
  2: optional i32 serverProtocolVersion
  3: optional i64 sessionId
  4: optional map<string, string> configuration
}

struct CloseSessionReq {
  1: optional i64 sessionId
}

struct SetTimeZoneReq {
  1: optional i64 sessionId
  2: optional string timeZone
}

struct GetTimeZoneResp {
  1: optional Status status
  2: optional string timeZone
}

struct ExecuteStatementReq {
  1: optional i64 sessionId
  2: optional string statement
  3: optional i64 statementId
  4: optional i32 fetchSize
  5: optional i64 timeout
  6: optional bool enableRedirectQuery
  7: optional bool jdbcQuery
}

struct ExecuteStatementResp {
  1: optional Status status
  2: optional i64 queryId
  3: optional list<string> columns
  4: optional string operationType
  5: optional bool ignoreTimeStamp
  6: optional list<string> dataTypeList
  9: optional map<string, i32> columnNameIndexMap
  13: optional list<binary> queryResult
  14: optional bool moreData
  15: optional string database
  16: optional bool tableModel
  17: optional list<i32> columnIndex2TsBlockColumnIndexList
}

struct FetchResultsReq {
  1: optional i64 sessionId
  2: optional string statement
  3: optional i32 fetchSize
  4: optional i64 queryId
  5: optional bool isAlign
  6: optional i64 timeout
  7: optional i64 statementId
}

struct FetchResultsResp {
  1: optional Status status
  2: optional bool hasResultSet
  3: optional bool isAlign
  6: optional list<binary> queryResult
  7: optional bool moreData
}

struct CloseOperationReq {
  1: optional i64 sessionId
  2: optional i64 queryId
  3: optional i64 statementId
  4: optional string preparedStatementName
}

struct CreateTimeseriesReq {
  1: optional i64 sessionId
  2: optional string path
  3: optional i32 dataType
  4: optional i32 encoding
  5: optional i32 compressor
  6: optional map<string, string> props
  7: optional map<string, string> tags
  8: optional map<string, string> attributes
  9: optional string measurementAlias
}

struct CreateMultiTimeseriesReq {
  1: optional i64 sessionId
  2: optional list<string> paths
  3: optional list<i32> dataTypes
  4: optional list<i32> encodings
  5: optional list<i32> compressors
  6: optional list<map<string, string>> propsList
  7: optional list<map<string, string>> tagsList
  8: optional list<map<string, string>> attributesList
  9: optional list<string> measurementAliasList
}

struct CreateAlignedTimeseriesReq {
  1: optional i64 sessionId
  2: optional string prefixPath
  3: optional list<string> measurements
  4: optional list<i32> dataTypes
  5: optional list<i32> encodings
  6: optional list<i32> compressors
  7: optional list<string> measurementAlias
  8: optional list<map<string, string>> tagsList
  9: optional list<map<string, string>> attributesList
}

struct DeleteDataReq {
  1: optional i64 sessionId
  2: optional list<string> paths
  3: optional i64 startTime
  4: optional i64 endTime
}

struct InsertRecordReq {
  1: optional i64 sessionId
  2: optional string prefixPath
  3: optional list<string> measurements
  4: optional binary values
  5: optional i64 timestamp
  6: optional bool isAligned
  7: optional bool isWriteToTable
  8: optional list<i8> columnCategories
}

struct InsertStringRecordReq {
  1: optional i64 sessionId
  2: optional string prefixPath
  3: optional list<string> measurements
  4: optional list<string> values
  5: optional i64 timestamp
  6: optional bool isAligned
  7: optional i64 timeout
}

struct InsertRecordsReq {
  1: optional i64 sessionId
  2: optional list<string> prefixPaths
  3: optional list<list<string>> measurementsList
  4: optional list<binary> valuesList
  5: optional list<i64> timestamps
  6: optional bool isAligned
}

struct InsertRecordsOfOneDeviceReq {
  1: optional i64 sessionId
  2: optional string prefixPath
  3: optional list<list<string>> measurementsList
  4: optional list<binary> valuesList
  5: optional list<i64> timestamps
  6: optional bool isAligned
}

struct InsertStringRecordsOfOneDeviceReq {
  1: optional i64 sessionId
  2: optional string prefixPath
  3: optional list<list<string>> measurementsList
  4: optional list<list<string>> valuesList
  5: optional list<i64> timestamps
  6: optional bool isAligned
}

struct InsertStringRecordsReq {
  1: optional i64 sessionId
  2: optional list<string> prefixPaths
  3: optional list<list<string>> measurementsList
  4: optional list<list<string>> valuesList
  5: optional list<i64> timestamps
  6: optional bool isAligned
}

struct InsertTabletReq {
  1: optional i64 sessionId
  2: optional string prefixPath
  3: optional list<string> measurements
  4: optional binary values
  5: optional binary timestamps
  6: optional list<i32> types
  7: optional i32 size
  8: optional bool isAligned
  9: optional bool writeToTable
  10: optional list<i8> columnCategories
  11: optional bool isCompressed
  12: optional list<i8> encodingTypes
  13: optional i8 compressType
}

struct InsertTabletsReq {
  1: optional i64 sessionId
  2: optional list<string> prefixPaths
  3: optional list<list<string>> measurementsList
  4: optional list<binary> valuesList
  5: optional list<binary> timestampsList
  6: optional list<list<i32>> typesList
  7: optional list<i32> sizeList
  8: optional bool isAligned
}

struct RawDataQueryReq {
  1: optional i64 sessionId
  2: optional list<string> paths
  3: optional i32 fetchSize
  4: optional i64 startTime
  5: optional i64 endTime
  6: optional i64 statementId
  7: optional bool enableRedirectQuery
  8: optional bool jdbcQuery
  9: optional i64 timeout
  10: optional bool legalPathNodes
}

struct LastDataQueryReq {
  1: optional i64 sessionId
  2: optional list<string> paths
  3: optional i32 fetchSize
  4: optional i64 time
  5: optional i64 statementId
  6: optional bool enableRedirectQuery
  7: optional bool jdbcQuery
  8: optional i64 timeout
  9: optional bool legalPathNodes
}

struct PipeTransferReq {
  1: optional i8 version
  2: optional i16 type
  3: optional binary body
}

struct PipeTransferResp {
  1: optional Status status
  2: optional binary body
}

service ClientService {
  OpenSessionResp openSession(1: OpenSessionReq req)
  Status closeSession(1: CloseSessionReq req)
  i64 requestStatementId(1: i64 sessionId)
  Status setTimeZone(1: SetTimeZoneReq req)
  GetTimeZoneResp getTimeZone(1: i64 sessionId)

  ExecuteStatementResp executeStatementV2(1: ExecuteStatementReq req)
  ExecuteStatementResp executeQueryStatementV2(1: ExecuteStatementReq req)
  ExecuteStatementResp executeUpdateStatementV2(1: ExecuteStatementReq req)
  ExecuteStatementResp executeRawDataQueryV2(1: RawDataQueryReq req)
  ExecuteStatementResp executeLastDataQueryV2(1: LastDataQueryReq req)
  FetchResultsResp fetchResultsV2(1: FetchResultsReq req)
  Status closeOperation(1: CloseOperationReq req)

  Status setStorageGroup(1: i64 sessionId, 2: string storageGroup)
  Status deleteStorageGroups(1: i64 sessionId, 2: list<string> storageGroup)
  Status createTimeseries(1: CreateTimeseriesReq req)
  Status createMultiTimeseries(1: CreateMultiTimeseriesReq req)
  Status createAlignedTimeseries(1: CreateAlignedTimeseriesReq req)
  Status deleteTimeseries(1: i64 sessionId, 2: list<string> path)
  Status deleteData(1: DeleteDataReq req)

  Status insertRecord(1: InsertRecordReq req)
  Status insertStringRecord(1: InsertStringRecordReq req)
  Status insertRecords(1: InsertRecordsReq req)
  Status insertStringRecords(1: InsertStringRecordsReq req)
  Status insertRecordsOfOneDevice(1: InsertRecordsOfOneDeviceReq req)
  Status insertStringRecordsOfOneDevice(1: InsertStringRecordsOfOneDeviceReq req)
  Status insertTablet(1: InsertTabletReq req)
  Status insertTablets(1: InsertTabletsReq req)
  Status testInsertRecord(1: InsertRecordReq req)
  Status testInsertStringRecord(1: InsertStringRecordReq req)
  Status testInsertRecords(1: InsertRecordsReq req)
  Status testInsertRecordsOfOneDevice(1: InsertRecordsOfOneDeviceReq req)
  Status testInsertStringRecords(1: InsertStringRecordsReq req)
  Status testInsertTablet(1: InsertTabletReq req)
  Status testInsertTablets(1: InsertTabletsReq req)

  PipeTransferResp pipeTransfer(1: PipeTransferReq req)
}
