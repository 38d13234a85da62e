package wxopenapi

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// The protobuf messages of wx-server-sdk's src/protobuf/openapi.js that fn reads and writes
// (field numbers from its encoders):
//
//	CommApiData     {1 apiType int32, 2 openapiData OpenApiData, 4 svrkitData SvrkitApiData, 6 appid string}
//	OpenApiData     {1 pairs repeated KeyValuePair}
//	KeyValuePair    {1 key string, 2 value bytes, 3 contenttype string, 4 filename string}
//	SvrkitApiData   {1 apiName string, 2 reqData bytes}
//	CommOpenApiResp {1 respData bytes, 2 contentType string, 3 errorCode int32, 4 httpCode uint32, 6 svrkitErrorCode int32}
//	ApiGetOpenDataByCloudIdReq  {2 cloudidList repeated string}
//	ApiGetOpenDataByCloudIdResp {1 dataList repeated OpDataItem{1 cloudId string, 2 json string}}

const maxPairs = 256

type commApiData struct {
	pairs     args
	svrkitAPI string
	svrkitReq []byte
	appid     string
}

// fields walks a message's fields, calling fn with each field's number, wire type and raw value
// (bytes for length-delimited fields, the varint for varints).
func fields(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error) error {
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
		var v []byte
		var n uint64
		switch typ {
		case protowire.BytesType:
			v, l = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			n, l = protowire.ConsumeVarint(b)
		default:
			l = protowire.ConsumeFieldValue(num, typ, b)
		}
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
		if err := fn(num, typ, v, n); err != nil {
			return err
		}
	}
	return nil
}

func decodeCommApiData(b []byte) (*commApiData, error) {
	d := &commApiData{pairs: args{}}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 2:
			return fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				if num != 1 || typ != protowire.BytesType {
					return nil
				}
				if len(d.pairs) >= maxPairs {
					return fmt.Errorf("more than %d parameters", maxPairs)
				}
				var key string
				var val []byte
				if err := fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
					switch {
					case num == 1 && typ == protowire.BytesType:
						key = string(v)
					case num == 2 && typ == protowire.BytesType:
						val = v
					}
					return nil
				}); err != nil {
					return err
				}
				if key == "" {
					return errors.New("a parameter without a key")
				}
				d.pairs[key] = val
				return nil
			})
		case 4:
			return fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				switch {
				case num == 1 && typ == protowire.BytesType:
					d.svrkitAPI = string(v)
				case num == 2 && typ == protowire.BytesType:
					d.svrkitReq = v
				}
				return nil
			})
		case 6:
			d.appid = string(v)
		}
		return nil
	})
	return d, err
}

func decodeCloudIDs(b []byte) ([]string, error) {
	var ids []string
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num == 2 && typ == protowire.BytesType {
			if len(ids) >= 100 {
				return errors.New("more than 100 cloudIDs")
			}
			ids = append(ids, string(v))
		}
		return nil
	})
	return ids, err
}

func encodeCommOpenApiResp(data []byte, contentType string, errorCode int32, httpCode uint32, svrkitErrorCode int32) []byte {
	var b []byte
	if data != nil {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, data)
	}
	if contentType != "" {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, contentType)
	}
	if errorCode != 0 {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(errorCode)))
	}
	b = protowire.AppendTag(b, 4, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(httpCode))
	if svrkitErrorCode != 0 {
		b = protowire.AppendTag(b, 6, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(svrkitErrorCode)))
	}
	return b
}

func encodeOpenDataResp(items [][2]string) []byte {
	var b []byte
	for _, it := range items {
		var item []byte
		item = protowire.AppendTag(item, 1, protowire.BytesType)
		item = protowire.AppendString(item, it[0])
		item = protowire.AppendTag(item, 2, protowire.BytesType)
		item = protowire.AppendString(item, it[1])
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, item)
	}
	return b
}
