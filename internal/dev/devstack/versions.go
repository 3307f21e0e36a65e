package devstack

import "runtime/debug"

// Pinned versions of the servers the local stack runs. The npm versions
// must match npm/package.json and npm/package-lock.json (a test checks it);
// the OpenSearch and Elasticsearch zips are pinned by version and SHA-512.
const (
	// KinesisLocalVersion is the npm kinesis-local (kinesis-mock) release.
	KinesisLocalVersion = "0.6.2"
	// DynaliteVersion is the npm dynalite release.
	DynaliteVersion = "4.0.0"
	// OpenSearchVersion is the OpenSearch integ-test-zip release from Maven Central.
	OpenSearchVersion = "2.19.6"

	// openSearchSHA512 is the SHA-512 of opensearch-2.19.6.zip, as published
	// next to it on Maven Central (.sha512).
	openSearchSHA512 = "8adbfaa13162b8d42b388ece6b39bfb7f1a349ab9c128d4eced78ba1dd43b5a10850b43b8aac19fa5ab11f4d5c355ddf6f6617514d6112b0936a1903005d1d36"

	// openSearchPath is the zip's path under the Maven repository root.
	openSearchPath = "/org/opensearch/distribution/integ-test-zip/opensearch/" + OpenSearchVersion + "/opensearch-" + OpenSearchVersion + ".zip"

	// ElasticsearchVersion is the Elasticsearch integ-test-zip release from Maven Central.
	ElasticsearchVersion = "8.19.21"

	// elasticsearchSHA512 is the SHA-512 of elasticsearch-8.19.21.zip, as
	// published next to it on Maven Central (.sha512).
	elasticsearchSHA512 = "cf6b0a93860d329937ae7f913ec5073b0c726c77639764b93fc83a304aa1dd9d4defcfa2849948eea3b0b47c2065f994908603939fc2a4774c9c4d868c5ec1dd"

	// elasticsearchPath is the zip's path under the Maven repository root.
	elasticsearchPath = "/org/elasticsearch/distribution/integ-test-zip/elasticsearch/" + ElasticsearchVersion + "/elasticsearch-" + ElasticsearchVersion + ".zip"

	// DefaultMavenURL is the Maven repository the OpenSearch and Elasticsearch zips come from.
	DefaultMavenURL = "https://repo1.maven.org/maven2"

	// gofakes3Module is the Go module that serves S3; its version comes from
	// the binary's build information.
	gofakes3Module = "github.com/johannesboyne/gofakes3"
)

// GoFakeS3Version returns the gofakes3 version compiled into this binary,
// or "unknown" when the binary carries no build information. It does not
// block and is safe for concurrent use.
func GoFakeS3Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, d := range bi.Deps {
		if d.Path == gofakes3Module {
			if d.Replace != nil {
				return d.Replace.Version
			}
			return d.Version
		}
	}
	return "unknown"
}
