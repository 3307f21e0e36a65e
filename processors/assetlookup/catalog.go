package assetlookup

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/leasehold/leasehold/event"
)

// Entry is one asset of the catalog. In a file or a DynamoDB item the
// attribute names are asset_id, title, type, customer and collection; only
// asset_id is required.
type Entry struct {
	AssetID    string `json:"asset_id"`
	Title      string `json:"title"`
	Type       string `json:"type"`
	Customer   string `json:"customer"`
	Collection string `json:"collection"`
}

// Catalog maps asset ids to entries. A loaded Catalog is never changed, so
// it may be read from any goroutine.
type Catalog map[string]Entry

// normalize trims the entry and maps its type onto the event kinds: the
// four known ones in any case, "" when absent, AssetOther for anything else.
func (e Entry) normalize() Entry {
	e.AssetID = strings.TrimSpace(e.AssetID)
	e.Title = strings.TrimSpace(e.Title)
	e.Customer = strings.TrimSpace(e.Customer)
	e.Collection = strings.TrimSpace(e.Collection)
	switch t := strings.ToLower(strings.TrimSpace(e.Type)); t {
	case event.AssetVideo, event.AssetImage, event.AssetAudio, event.AssetDocument, "":
		e.Type = t
	default:
		e.Type = event.AssetOther
	}
	return e
}

// ReadFile loads a catalog file: CSV when its name ends in .csv (a header
// row naming the columns, asset_id required, unknown columns ignored),
// NDJSON otherwise (one JSON object per line, blank lines skipped). Errors
// name the file and line.
func ReadFile(path string) (Catalog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if strings.EqualFold(filepath.Ext(path), ".csv") {
		return readCSV(path, f)
	}
	return readNDJSON(path, f)
}

func readNDJSON(path string, r io.Reader) (Catalog, error) {
	c := Catalog{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		var e Entry
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		if err := c.add(e); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", path, line+1, err)
	}
	return c, nil
}

func readCSV(path string, r io.Reader) (Catalog, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%s:1: header: %w", path, err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	if _, ok := col["asset_id"]; !ok {
		return nil, fmt.Errorf("%s:1: header has no asset_id column (columns: asset_id, title, type, customer, collection)", path)
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return rec[i]
		}
		return ""
	}
	c := Catalog{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return c, nil
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		e := Entry{AssetID: get(rec, "asset_id"), Title: get(rec, "title"), Type: get(rec, "type"), Customer: get(rec, "customer"), Collection: get(rec, "collection")}
		if err := c.add(e); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
	}
}

// errNoID is returned for an entry without asset_id.
var errNoID = errors.New("entry has no asset_id")

func (c Catalog) add(e Entry) error {
	e = e.normalize()
	if e.AssetID == "" {
		return errNoID
	}
	c[e.AssetID] = e
	return nil
}

// ScanAPI is the part of the DynamoDB client ReadTable uses.
type ScanAPI interface {
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// ReadTable loads the catalog from a DynamoDB table whose items carry
// asset_id and optionally title, type, customer and collection as strings
// (the key schema does not matter). It blocks for one Scan per page; items
// without asset_id are skipped.
func ReadTable(ctx context.Context, api ScanAPI, table string) (Catalog, error) {
	c := Catalog{}
	in := &dynamodb.ScanInput{
		TableName:                aws.String(table),
		ProjectionExpression:     aws.String("#id, #title, #type, #customer, #collection"),
		ExpressionAttributeNames: map[string]string{"#id": "asset_id", "#title": "title", "#type": "type", "#customer": "customer", "#collection": "collection"},
	}
	for {
		out, err := api.Scan(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", table, err)
		}
		for _, it := range out.Items {
			_ = c.add(Entry{AssetID: str(it["asset_id"]), Title: str(it["title"]), Type: str(it["type"]), Customer: str(it["customer"]), Collection: str(it["collection"])})
		}
		if len(out.LastEvaluatedKey) == 0 {
			return c, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

func str(v types.AttributeValue) string {
	if s, ok := v.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}
