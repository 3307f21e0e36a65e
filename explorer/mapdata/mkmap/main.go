// Command mkmap turns world-atlas's Natural Earth countries (TopoJSON, in
// node_modules after `npm ci` in explorer/mapdata) into
// explorer/web/world.json: one SVG path per country, keyed by ISO 3166-1
// alpha-2 code, in an equirectangular projection without Antarctica. The
// explorer's page draws its map from it with no library. Run through
// `go generate ./explorer/...`.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"sort"
	"strings"

	"golang.org/x/text/language"
)

type topology struct {
	Transform struct {
		Scale     [2]float64 `json:"scale"`
		Translate [2]float64 `json:"translate"`
	} `json:"transform"`
	Arcs    [][][2]float64 `json:"arcs"`
	Objects struct {
		Countries struct {
			Geometries []struct {
				Type       string          `json:"type"`
				ID         string          `json:"id"`
				Arcs       json.RawMessage `json:"arcs"`
				Properties struct {
					Name string `json:"name"`
				} `json:"properties"`
			} `json:"geometries"`
		} `json:"countries"`
	} `json:"objects"`
}

const (
	k      = 2.0 // pixels per degree
	top    = 84.0
	bottom = -58.0
)

func main() {
	in := flag.String("in", "node_modules/world-atlas/countries-110m.json", "world-atlas TopoJSON")
	out := flag.String("out", "../web/world.json", "output")
	flag.Parse()
	b, err := os.ReadFile(*in)
	if err != nil {
		log.Fatalf("%v (run `npm ci` in explorer/mapdata first)", err)
	}
	var t topology
	if err := json.Unmarshal(b, &t); err != nil {
		log.Fatal(err)
	}
	// Decode the delta-encoded, quantized arcs into projected points.
	arcs := make([][][2]float64, len(t.Arcs))
	for i, a := range t.Arcs {
		var x, y float64
		for _, p := range a {
			x += p[0]
			y += p[1]
			lon := x*t.Transform.Scale[0] + t.Transform.Translate[0]
			lat := y*t.Transform.Scale[1] + t.Transform.Translate[1]
			lat = math.Max(bottom, math.Min(top, lat))
			arcs[i] = append(arcs[i], [2]float64{(lon + 180) * k, (top - lat) * k})
		}
	}
	ring := func(idx []int) string {
		var pts [][2]float64
		for _, i := range idx {
			a := arcs[max(i, ^i)]
			if i < 0 {
				a = reversed(a)
			}
			if len(pts) > 0 {
				a = a[1:] // arcs share their end points
			}
			pts = append(pts, a...)
		}
		var sb strings.Builder
		lastX, lastY := math.NaN(), math.NaN()
		for j, p := range pts {
			x, y := math.Round(p[0]*10)/10, math.Round(p[1]*10)/10
			if x == lastX && y == lastY {
				continue
			}
			if j == 0 {
				sb.WriteString("M")
			} else {
				sb.WriteString("L")
			}
			fmt.Fprintf(&sb, "%g %g", x, y)
			lastX, lastY = x, y
		}
		sb.WriteString("Z")
		return sb.String()
	}
	paths := map[string]string{}
	names := map[string]string{}
	for _, g := range t.Objects.Countries.Geometries {
		if g.ID == "010" || g.ID == "" { // Antarctica; disputed areas without a code
			continue
		}
		r, err := language.ParseRegion(g.ID)
		if err != nil {
			log.Printf("skip %s (%s): %v", g.ID, g.Properties.Name, err)
			continue
		}
		iso := r.String()
		var polys [][][]int
		switch g.Type {
		case "Polygon":
			var p [][]int
			if err := json.Unmarshal(g.Arcs, &p); err != nil {
				log.Fatal(err)
			}
			polys = [][][]int{p}
		case "MultiPolygon":
			if err := json.Unmarshal(g.Arcs, &polys); err != nil {
				log.Fatal(err)
			}
		}
		var sb strings.Builder
		sb.WriteString(paths[iso])
		for _, p := range polys {
			for _, r := range p {
				sb.WriteString(ring(r))
			}
		}
		paths[iso] = sb.String()
		names[iso] = g.Properties.Name
	}
	codes := make([]string, 0, len(paths))
	for c := range paths {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	doc := struct {
		Source    string            `json:"source"`
		Width     float64           `json:"width"`
		Height    float64           `json:"height"`
		Countries map[string]string `json:"countries"`
	}{"Natural Earth 1:110m country shapes (public domain), via world-atlas 2.0.2", 360 * k, (top - bottom) * k, paths}
	b, err = json.Marshal(doc)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		log.Fatal(err)
	}
	log.Printf("%d countries, %d bytes", len(codes), len(b))
}

func reversed(a [][2]float64) [][2]float64 {
	out := make([][2]float64, len(a))
	for i, p := range a {
		out[len(a)-1-i] = p
	}
	return out
}
