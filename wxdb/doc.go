// Package wxdb is the WeChat cloud database (CloudBase's document database) that cloud
// functions reach through the real wx-server-sdk: the database.* actions the SDK posts to
// /admin, answered from one SQLite file per project. Documents are stored as relaxed Extended
// JSON; where-queries (and orderBy, on paths that held only scalars) are pushed down to SQL over
// json_extract with expression indexes made on first use, and every candidate row is re-checked
// by an exact MongoDB-semantics matcher. Paths that ever held an array (or a decimal, NaN,
// infinity) are remembered per collection and never pushed down, since SQL cannot see into them.
//
// # Wire format (wx-server-sdk 4.0.2 → @cloudbase/node-sdk 3.17.2 → @cloudbase/database 1.4.3)
//
// Paths are inside testdata/npm/node_modules.
//
// Transport: @cloudbase/node-sdk/src/utils/tcbdbapirequester.ts sends every call as
// POST <TCB_CONTEXT_CNFG.URL>?env=<env>&seqId=.. with a JSON body {...params, action,
// envName, wxCloudApiToken, tcb_sessionToken, ...} (src/utils/tcbapirequester.ts makeParams).
// A reply with a truthy "code" is thrown as TcbError{code, message, requestId}
// (tcbapirequester.ts request → utils.ts processReturn; throwOnCode is true).
//
// Actions and fields (@cloudbase/database/src/{collection,document,query,aggregate,index}.ts,
// transaction/index.ts). EJSON strings are canonical (bson EJSON.stringify relaxed:false:
// {"$numberInt":"1"}, {"$numberDouble":"1.5"}, {"$numberLong":".."}, {"$date":{"$numberLong":".."}},
// {"$regularExpression":{pattern,options}}, {"$binary":..}, {"$oid":..}); db.serverDate() is
// {"$tcb_server_date":{"offset":n}}; nested where/update objects arrive flattened to dot paths
// (serializer/common.ts flattenQueryObject); geo values are GeoJSON.
//
//	database.insertDocument    {collectionName, data: [EJSON doc, ...], transactionId?}
//	                           → {data: {insertedIds: [..]}}
//	database.getDocument       {collectionName, query: EJSON, queryType: WHERE|DOC, order: EJSON {f: ±1}
//	                           (key order is sort order), offset, limit (SDK sends 100 by default and
//	                           caps at 1000), projection: EJSON {f: 0|1|{$slice}|{$elemMatch}},
//	                           multi, transactionId?}
//	                           → {data: {list: [EJSON doc, ...]}}; doc(id).get sends {query: {_id}, queryType: DOC}
//	database.calculateDocument {collectionName, query, queryType} → {data: {total}}
//	database.modifyDocument    update: {query, queryType, data: EJSON {$set,$inc,...}, multi, merge: true, upsert: false}
//	                           set:    {query: {_id}, queryType: DOC, data: EJSON doc, multi: false, merge: false, upsert: true}
//	                           → {data: {updated, upsert_id?}} (document.set reports created = upsert_id ? 1 : 0)
//	database.removeDocument    {collectionName, query, queryType, multi} → {data: {deleted}}
//	database.aggregateDocuments {collectionName, stages: [{stageKey: "$match", stageValue: EJSON or JSON}]}
//	                           → {data: {list: [EJSON doc, ...]}}
//	database.addCollection     {collectionName} → {}
//	database.modifyAndReturnDoc {collectionName, query, queryType: WHERE, data} → {data: {updated, doc: EJSON}}
//	                           (@cloudbase/database only; wx-server-sdk's Query does not expose it)
//	database.startTransaction  {} → {transactionId} (top level, not under data)
//	database.commitTransaction {transactionId}; database.abortTransaction {transactionId}
//	                           inside a transaction, doc().get/set/update/remove and add send the normal
//	                           actions with transactionId.
//	database.getInTransaction / updateDocInTransaction / deleteDocInTransaction {collectionName,
//	                           transactionId, _id, data?, upsert?}: the older dist/commonjs/transaction.js
//	                           (not used by 4.0.2); answers {data: EJSON}, {updated: "n", upserted?},
//	                           {deleted: "n"} at the top level.
//
// wx-server-sdk 1.x (@cloudbase/database 0.9.x) sends older action names with plain JSON values
// (addDocument, queryDocument, countDocument, updateDocument, deleteDocument, aggregate): see
// legacy.go, which answers them through the actions above.
//
// Errors: {code, message, requestId}. wx-server-sdk (index.js, src/api/database/api/database/
// helper/error-checker.ts and src/utils/error.ts toSDKError) maps code through TCB_ERR_CODE
// (src/api/cloud/provider/tcb/config/error.config.ts) and rejects with errCode and
// errMsg "<api>:fail <errCode> <ERR_CODE text>. <message>", e.g. "collection.get:fail -502005
// database collection not exists. [ResourceNotFound] Db or Table not exist: nope. ...".
// Codes used here: DATABASE_COLLECTION_NOT_EXIST -502005, DATABASE_REQUEST_FAILED -502001,
// DATABASE_INVALID_OPERRATOR -502002 (unknown operators and stages), INVALID_PARAM -501007
// (malformed EJSON, bad paths and arguments), DATABASE_PERMISSION_DENIED -502003; codes outside
// the table become -501001. Some wx wrappers (createCollection, aggregate().end(), transaction
// commit) pass the TcbError on as an Error, so the user sees errCode -1 with the message.
// doc(id).get of a missing document is an SDK-side error: "document with _id x does not exist".
//
// Transactions: @cloudbase/database runTransaction retries (3 times by default) only when the
// error it catches has code DATABASE_TRANSACTION_CONFLICT; doc operations inside the callback
// lose the code in wx-server-sdk's wrappers, commit does not, so conflicts are answered by
// commitTransaction; plain writes wait for the transactions holding their documents (see tx.go).
//
// watch: wx-server-sdk's Query and DocumentReference have no watch (calling it is a TypeError in
// the function), so it never reaches /admin; a raw database.watch action is answered with an error.
//
// # Choices
//
// get returns at most 100 documents unless limit says otherwise, and honours limit up to 1000 (the
// server SDK's own bounds); a Caller with Client gets 20. Collections are created by
// createCollection and implicitly by a server add or upsert; a Client's add to a missing
// collection fails with -502005 and its where().update()/remove() with -502003. Field names may
// not start with '$' or contain '.'. Documents are at most 16 MB and 100 levels deep; answers at
// most 64 MB. Sort order across types is MongoDB's BSON order. add with no _id gets 32 hex
// digits; _openid is set from the Caller's OpenID when the document has none.
package wxdb
