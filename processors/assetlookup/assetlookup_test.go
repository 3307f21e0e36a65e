package assetlookup_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"gopkg.in/yaml.v3"

	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/internal/dev/testenv"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/assetlookup"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func msgs(evs ...event.Event) []*processors.Message {
	var out []*processors.Message
	for _, e := range evs {
		out = append(out, &processors.Message{Event: e, Parsed: true})
	}
	return out
}

const ndjson = `{"asset_id":"a1","title":"Spring launch – hero film","type":"Video","customer":"acme","collection":"Campaigns/Spring"}

{"asset_id":"a2","title":"Logo","type":"vector","customer":"globex"}
`

func TestReadFileFormats(t *testing.T) {
	csvPath := writeFile(t, "cat.csv", "\ufeffasset_id,title,type,customer,collection,extra\na1,\"Spring launch – hero film\",video,acme,Campaigns/Spring,x\na2,Logo,vector,globex,,\n")
	for _, path := range []string{writeFile(t, "cat.ndjson", ndjson), csvPath} {
		t.Run(filepath.Ext(path), func(t *testing.T) {
			c, err := assetlookup.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want := assetlookup.Entry{AssetID: "a1", Title: "Spring launch – hero film", Type: "video", Customer: "acme", Collection: "Campaigns/Spring"}
			if c["a1"] != want {
				t.Fatalf("a1 = %+v, want %+v", c["a1"], want)
			}
			if c["a2"].Type != event.AssetOther {
				t.Fatalf("an unknown type should become %q, got %q", event.AssetOther, c["a2"].Type)
			}
			if len(c) != 2 {
				t.Fatalf("%d entries", len(c))
			}
		})
	}
}

func TestReadFileErrorsNameTheLine(t *testing.T) {
	tests := []struct{ name, content, want string }{
		{"bad.ndjson", "{\"asset_id\":\"a\"}\n{oops\n", "bad.ndjson:2"},
		{"noid.ndjson", "{\"asset_id\":\"a\"}\n{\"title\":\"x\"}\n", "noid.ndjson:2: entry has no asset_id"},
		{"nohead.csv", "title,type\nx,video\n", "no asset_id column"},
		{"noid.csv", "asset_id,title\na,x\n,y\n", "noid.csv:3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := assetlookup.ReadFile(writeFile(t, tc.name, tc.content))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestProcess(t *testing.T) {
	path := writeFile(t, "cat.ndjson", ndjson)
	in := func() []*processors.Message {
		return msgs(
			event.Event{EventID: "known", AssetID: "a1"},
			event.Event{EventID: "wrong-tenant", AssetID: "a1", Tenant: "evil"},
			event.Event{EventID: "unknown", AssetID: "zzz", Tenant: "acme"},
			event.Event{EventID: "page", URI: "/index.html"},
		)
	}
	tests := []struct {
		unknown, tenant string
		wantIDs         []string
		wantTenant      string // of "wrong-tenant"
		deadLetter      bool
	}{
		{"", "", []string{"known", "wrong-tenant", "unknown", "page"}, "acme", false},
		{"drop", "catalog", []string{"known", "wrong-tenant", "page"}, "acme", false},
		{"dead_letter", "keep", []string{"known", "wrong-tenant", "unknown", "page"}, "evil", true},
	}
	for _, tc := range tests {
		t.Run(tc.unknown+"/"+tc.tenant, func(t *testing.T) {
			l, err := assetlookup.New(context.Background(), assetlookup.Options{File: path, Unknown: tc.unknown, Tenant: tc.tenant}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			out, err := l.Process(context.Background(), in())
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			byID := map[string]*processors.Message{}
			for _, m := range out {
				ids = append(ids, m.Event.EventID)
				byID[m.Event.EventID] = m
			}
			if strings.Join(ids, ",") != strings.Join(tc.wantIDs, ",") {
				t.Fatalf("passed on %v, want %v", ids, tc.wantIDs)
			}
			k := byID["known"].Event
			if k.Asset != (event.Asset{Title: "Spring launch – hero film", Type: "video", Collection: "Campaigns/Spring"}) || k.Tenant != "acme" {
				t.Fatalf("known asset enriched as %+v tenant %q", k.Asset, k.Tenant)
			}
			if got := byID["wrong-tenant"].Event.Tenant; got != tc.wantTenant {
				t.Fatalf("tenant of an event that names another owner = %q, want %q", got, tc.wantTenant)
			}
			if u := byID["unknown"]; u != nil {
				if u.Event.Asset != (event.Asset{}) || u.Event.Tenant != "acme" {
					t.Fatalf("unknown asset changed: %+v", u.Event)
				}
				if f := u.Failed(); (f != nil) != tc.deadLetter || (f != nil && !errors.Is(f.Err, assetlookup.ErrUnknownAsset)) {
					t.Fatalf("unknown asset failure = %+v, dead letter wanted: %v", f, tc.deadLetter)
				}
			}
			if byID["page"].Event.Asset != (event.Asset{}) || byID["page"].Failed() != nil {
				t.Fatal("an event without asset_id must pass untouched")
			}
			if l.Stats().Unknown != 1 {
				t.Fatalf("unknown count %d", l.Stats().Unknown)
			}
		})
	}
}

func TestRefreshPicksUpFileChangesAndKeepsCatalogOnError(t *testing.T) {
	path := writeFile(t, "cat.ndjson", ndjson)
	l, err := assetlookup.New(context.Background(), assetlookup.Options{File: path, Refresh: time.Hour}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.WriteFile(path, []byte(`{"asset_id":"a3","title":"New brochure","type":"document","customer":"acme"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l.Refresh(context.Background())
	if e, ok := l.Get("a3"); !ok || e.Title != "New brochure" {
		t.Fatalf("refresh did not load the new file: %+v %v", e, ok)
	}
	if _, ok := l.Get("a1"); ok {
		t.Fatal("refresh must replace the catalog, not merge into it")
	}
	if err := os.WriteFile(path, []byte("{broken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l.Refresh(context.Background())
	if _, ok := l.Get("a3"); !ok || l.Stats().RefreshFailures != 1 {
		t.Fatalf("a failed refresh must keep the previous catalog (failures %d)", l.Stats().RefreshFailures)
	}
}

func TestConfigErrors(t *testing.T) {
	good := writeFile(t, "cat.ndjson", ndjson)
	tests := []struct{ opts, want string }{
		{"unknown: keep", "file or table"},
		{"file: " + good + "\nunknown: skip", `unknown: "skip"`},
		{"file: " + good + "\ntenant: mine", `tenant: "mine"`},
		{"file: " + good + "\nrefresh: 10ms", "refresh: 10ms is too short"},
		{"file: /nonexistent/cat.ndjson", "file: "},
		{"file: " + good + "\nfiles: x", "field files not found"},
		{"table: catalog", "Deps.DynamoDB"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			_, err := build(t, tc.opts, processors.Deps{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func build(t *testing.T, opts string, deps processors.Deps) (processors.Processor, error) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(opts), &doc); err != nil {
		t.Fatal(err)
	}
	reg := processors.NewRegistry()
	assetlookup.Register(reg)
	ctor, err := reg.Processor(assetlookup.Type)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ctor(context.Background(), processors.NewOptions("pipeline.processors[0]", "", doc.Content[0]), deps)
	if c, ok := p.(interface{ Close() error }); ok && err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return p, err
}

// TestDynamoDBCatalog loads the catalog from a real (local) DynamoDB table,
// with more items than one Scan page returns, and sees a later change after
// a refresh.
func TestDynamoDBCatalog(t *testing.T) {
	e := testenv.Require(t, "dynamodb")
	ctx := testenv.Context(t, 2*time.Minute)
	db := testenv.DynamoDB(e)
	table := testenv.Name(t, "catalog")
	if _, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("asset_id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("asset_id"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	// The local DynamoDB creates tables asynchronously: wait until ACTIVE.
	for i := 0; ; i++ {
		out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err == nil && out.Table.TableStatus == types.TableStatusActive {
			break
		}
		if i == 300 {
			t.Fatalf("table %s not ACTIVE: %v", table, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(func() {
		_, _ = db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	// Titles of about 1 KB make 1,200 items exceed one Scan page (1 MB).
	long := strings.Repeat("x", 1000)
	put := func(id, title string) {
		t.Helper()
		_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
			"asset_id": &types.AttributeValueMemberS{Value: id}, "title": &types.AttributeValueMemberS{Value: title},
			"type": &types.AttributeValueMemberS{Value: "image"}, "customer": &types.AttributeValueMemberS{Value: "acme"},
			"collection": &types.AttributeValueMemberS{Value: "Brand"},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	const n = 1200
	for i := range n {
		put(fmt.Sprintf("a%04d", i), long)
	}
	file := writeFile(t, "cat.ndjson", `{"asset_id":"a0001","title":"from the file","customer":"other"}`+"\n"+`{"asset_id":"only-file","title":"file only"}`+"\n")
	p, err := build(t, "table: "+table+"\nfile: "+file, processors.Deps{DynamoDB: db})
	if err != nil {
		t.Fatal(err)
	}
	l := p.(*assetlookup.Lookup)
	if got := l.Stats().Entries; got != n+1 {
		t.Fatalf("%d entries, want %d (every page of the scan plus the file's extra)", got, n+1)
	}
	if e, _ := l.Get("a0001"); e.Title != long || e.Customer != "acme" || e.Type != "image" || e.Collection != "Brand" {
		t.Fatalf("the table must win over the file: %+v", e)
	}
	put("a9999", "added later")
	l.Refresh(ctx)
	if e, ok := l.Get("a9999"); !ok || e.Title != "added later" {
		t.Fatalf("refresh did not see the new item: %+v", e)
	}
}

// Validate is exported and pure: the zero values it accepts are the
// defaults New fills in.
func TestOptionsValidate(t *testing.T) {
	o := assetlookup.Options{File: "cat.ndjson"}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	err := assetlookup.Options{Refresh: time.Millisecond, Unknown: "skip", Tenant: "mine"}.Validate()
	for _, key := range []string{"file or table", "refresh: 1ms", `unknown: "skip"`, `tenant: "mine"`} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("Validate: %v, want it to name %q", err, key)
		}
	}
}
