package cloudfront_test

import (
	"testing"

	"github.com/leasehold/leasehold/cloudfront"
	"github.com/leasehold/leasehold/event"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		uri, query string
		status     int
		rangeStart int64
		want       event.Type
	}{
		{"image view", "GET", "/assets/logo.PNG", "", 200, -1, event.TypeView},
		{"video view", "GET", "/v/launch.mp4", "", 200, -1, event.TypeView},
		{"not modified still a view", "GET", "/a.jpg", "", 304, -1, event.TypeView},
		{"pdf view", "GET", "/docs/brochure.pdf", "", 200, -1, event.TypeView},
		{"hls manifest view", "GET", "/v/index.m3u8", "", 200, -1, event.TypeView},
		{"hls segment request", "GET", "/v/seg-001.ts", "", 200, -1, event.TypeRequest},
		{"first range is a view", "GET", "/v/a.mp4", "", 206, 0, event.TypeView},
		{"later range is a request", "GET", "/v/a.mp4", "", 206, 65536, event.TypeRequest},
		{"download flag", "GET", "/a.jpg", "download=1", 200, -1, event.TypeDownload},
		{"download flag true", "GET", "/a.jpg", "x=1&Download=true", 200, -1, event.TypeDownload},
		{"download flag empty", "GET", "/a.jpg", "download", 200, -1, event.TypeDownload},
		{"download flag off", "GET", "/a.jpg", "download=0", 200, -1, event.TypeView},
		{"download false", "GET", "/a.jpg", "download=false", 200, -1, event.TypeView},
		{"content disposition", "GET", "/a.jpg", "response-content-disposition=attachment%3B%20filename%3D%22a.jpg%22", 200, -1, event.TypeDownload},
		{"double-encoded disposition", "GET", "/a.jpg", "response-content-disposition=attachment%253Bfilename", 200, -1, event.TypeDownload},
		{"inline disposition", "GET", "/a.jpg", "response-content-disposition=inline", 200, -1, event.TypeView},
		{"download on a page", "GET", "/export", "download=1", 200, -1, event.TypeDownload},
		{"archive is a download", "GET", "/kit/brand.zip", "", 200, -1, event.TypeDownload},
		{"design file is a download", "GET", "/kit/poster.PSD", "", 200, -1, event.TypeDownload},
		{"page is a request", "GET", "/index.html", "", 200, -1, event.TypeRequest},
		{"root is a request", "GET", "/", "", 200, -1, event.TypeRequest},
		{"no extension", "GET", "/getApplications", "", 200, -1, event.TypeRequest},
		{"dot in directory only", "GET", "/v1.2/file", "", 200, -1, event.TypeRequest},
		{"head", "HEAD", "/a.jpg", "", 200, -1, event.TypeRequest},
		{"post", "POST", "/a.jpg", "download=1", 200, -1, event.TypeRequest},
		{"not found", "GET", "/a.jpg", "", 404, -1, event.TypeRequest},
		{"redirect", "GET", "/a.jpg", "", 301, -1, event.TypeRequest},
		{"viewer gone", "GET", "/a.jpg", "", 0, -1, event.TypeRequest},
		{"long extension", "GET", "/a.verylongextension", "", 200, -1, event.TypeRequest},
		{"empty", "", "", "", 0, -1, event.TypeRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := cloudfront.Classify(tc.method, tc.uri, tc.query, tc.status, tc.rangeStart); got != tc.want {
				t.Fatalf("Classify(%q, %q, %q, %d, %d) = %q, want %q", tc.method, tc.uri, tc.query, tc.status, tc.rangeStart, got, tc.want)
			}
		})
	}
}
