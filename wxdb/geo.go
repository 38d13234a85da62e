package wxdb

import (
	"math"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// earthRadius is MongoDB's radius for spherical distances, in meters.
const earthRadius = 6378100.0

func haversine(lng1, lat1, lng2, lat2 float64) float64 {
	rad := math.Pi / 180
	dlat := (lat2 - lat1) * rad
	dlng := (lng2 - lng1) * rad
	a := math.Sin(dlat/2)*math.Sin(dlat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dlng/2)*math.Sin(dlng/2)
	return 2 * earthRadius * math.Asin(math.Min(1, math.Sqrt(a)))
}

func pairOf(v any) (float64, float64, bool) {
	a, ok := v.(bson.A)
	if !ok || len(a) != 2 {
		return 0, 0, false
	}
	x, ok1 := toFloat(a[0])
	y, ok2 := toFloat(a[1])
	return x, y, ok1 && ok2
}

// pointOf reads a GeoJSON Point ({type: "Point", coordinates: [lng, lat]}) or a legacy pair.
func pointOf(v any) (float64, float64, bool) {
	if d, ok := v.(bson.D); ok {
		t, _ := lookupField(d, "type")
		if t != "Point" {
			return 0, 0, false
		}
		c, _ := lookupField(d, "coordinates")
		return pairOf(c)
	}
	return pairOf(v)
}

type ring [][2]float64

// geometry is a decoded GeoJSON value, reduced to points, lines and polygons.
type geometry struct {
	points   [][2]float64
	lines    []ring
	polygons [][]ring // outer ring first, then holes
}

func parseRing(v any) (ring, bool) {
	a, ok := v.(bson.A)
	if !ok {
		return nil, false
	}
	r := make(ring, 0, len(a))
	for _, p := range a {
		x, y, ok := pairOf(p)
		if !ok {
			return nil, false
		}
		r = append(r, [2]float64{x, y})
	}
	return r, true
}

func parseGeometry(v any) (*geometry, bool) {
	d, ok := v.(bson.D)
	if !ok {
		return nil, false
	}
	t, _ := lookupField(d, "type")
	c, _ := lookupField(d, "coordinates")
	g := &geometry{}
	ca, _ := c.(bson.A)
	switch t {
	case "Point":
		x, y, ok := pairOf(c)
		if !ok {
			return nil, false
		}
		g.points = append(g.points, [2]float64{x, y})
	case "MultiPoint":
		r, ok := parseRing(c)
		if !ok {
			return nil, false
		}
		g.points = r
	case "LineString":
		r, ok := parseRing(c)
		if !ok || len(r) < 2 {
			return nil, false
		}
		g.lines = append(g.lines, r)
	case "MultiLineString":
		for _, l := range ca {
			r, ok := parseRing(l)
			if !ok || len(r) < 2 {
				return nil, false
			}
			g.lines = append(g.lines, r)
		}
	case "Polygon":
		p, ok := parsePolygon(c)
		if !ok {
			return nil, false
		}
		g.polygons = append(g.polygons, p)
	case "MultiPolygon":
		for _, pc := range ca {
			p, ok := parsePolygon(pc)
			if !ok {
				return nil, false
			}
			g.polygons = append(g.polygons, p)
		}
	default:
		return nil, false
	}
	return g, true
}

func parsePolygon(v any) ([]ring, bool) {
	a, ok := v.(bson.A)
	if !ok || len(a) == 0 {
		return nil, false
	}
	var rs []ring
	for _, rv := range a {
		r, ok := parseRing(rv)
		if !ok || len(r) < 4 {
			return nil, false
		}
		rs = append(rs, r)
	}
	return rs, true
}

// inRing is the even-odd test on the lng/lat plane (good enough for the small polygons apps use).
func inRing(r ring, x, y float64) bool {
	in := false
	for i, j := 0, len(r)-1; i < len(r); j, i = i, i+1 {
		xi, yi, xj, yj := r[i][0], r[i][1], r[j][0], r[j][1]
		if (yi > y) != (yj > y) && x < (xj-xi)*(y-yi)/(yj-yi)+xi {
			in = !in
		}
	}
	return in
}

func inPolygon(p []ring, x, y float64) bool {
	if !inRing(p[0], x, y) {
		return false
	}
	for _, hole := range p[1:] {
		if inRing(hole, x, y) {
			return false
		}
	}
	return true
}

func segmentsCross(a, b, c, d [2]float64) bool {
	orient := func(p, q, r [2]float64) float64 { return (q[0]-p[0])*(r[1]-p[1]) - (q[1]-p[1])*(r[0]-p[0]) }
	d1, d2 := orient(c, d, a), orient(c, d, b)
	d3, d4 := orient(a, b, c), orient(a, b, d)
	return ((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0)) ||
		d1 == 0 && onSegment(c, d, a) || d2 == 0 && onSegment(c, d, b) || d3 == 0 && onSegment(a, b, c) || d4 == 0 && onSegment(a, b, d)
}

func onSegment(p, q, r [2]float64) bool {
	return math.Min(p[0], q[0]) <= r[0] && r[0] <= math.Max(p[0], q[0]) && math.Min(p[1], q[1]) <= r[1] && r[1] <= math.Max(p[1], q[1])
}

// allPoints lists every vertex of a geometry.
func (g *geometry) allPoints() [][2]float64 {
	pts := append([][2]float64(nil), g.points...)
	for _, l := range g.lines {
		pts = append(pts, l...)
	}
	for _, p := range g.polygons {
		pts = append(pts, p[0]...)
	}
	return pts
}

func (g *geometry) segments() [][2][2]float64 {
	var out [][2][2]float64
	add := func(r ring) {
		for i := 0; i+1 < len(r); i++ {
			out = append(out, [2][2]float64{r[i], r[i+1]})
		}
	}
	for _, l := range g.lines {
		add(l)
	}
	for _, p := range g.polygons {
		for _, r := range p {
			add(r)
		}
	}
	return out
}

func (g *geometry) containsPoint(x, y float64) bool {
	for _, p := range g.polygons {
		if inPolygon(p, x, y) {
			return true
		}
	}
	return false
}

func intersects(a, b *geometry) bool {
	for _, p := range a.allPoints() {
		if b.containsPoint(p[0], p[1]) {
			return true
		}
		for _, q := range b.points {
			if p == q {
				return true
			}
		}
	}
	for _, p := range b.allPoints() {
		if a.containsPoint(p[0], p[1]) {
			return true
		}
	}
	for _, s := range a.segments() {
		for _, t := range b.segments() {
			if segmentsCross(s[0], s[1], t[0], t[1]) {
				return true
			}
		}
		for _, q := range b.points {
			if onLine(s, q) {
				return true
			}
		}
	}
	for _, s := range b.segments() {
		for _, q := range a.points {
			if onLine(s, q) {
				return true
			}
		}
	}
	return false
}

func onLine(s [2][2]float64, q [2]float64) bool {
	cross := (s[1][0]-s[0][0])*(q[1]-s[0][1]) - (s[1][1]-s[0][1])*(q[0]-s[0][0])
	return math.Abs(cross) < 1e-12 && onSegment(s[0], s[1], q)
}

func parseNear(arg any, name string) (*nearSpec, float64, float64, error) {
	d, ok := arg.(bson.D)
	if !ok {
		return nil, 0, 0, badParam("geoNear on %s needs an object", name)
	}
	maxD, minD := math.Inf(1), 0.0
	ns := &nearSpec{}
	found := false
	for _, e := range d {
		switch e.Key {
		case "$geometry":
			x, y, ok := pointOf(e.Value)
			if !ok {
				return nil, 0, 0, badParam("geoNear on %s needs a Point geometry", name)
			}
			ns.lng, ns.lat, found = x, y, true
		case "$maxDistance":
			f, ok := toFloat(e.Value)
			if !ok || f < 0 {
				return nil, 0, 0, badParam("geoNear on %s: maxDistance must be a non-negative number", name)
			}
			maxD = f
		case "$minDistance":
			f, ok := toFloat(e.Value)
			if !ok || f < 0 {
				return nil, 0, 0, badParam("geoNear on %s: minDistance must be a non-negative number", name)
			}
			minD = f
		default:
			return nil, 0, 0, badParam("geoNear on %s: unknown option %s", name, e.Key)
		}
	}
	if !found {
		return nil, 0, 0, badParam("geoNear on %s needs $geometry", name)
	}
	return ns, maxD, minD, nil
}

func parseGeoWithin(arg any, name string) (valuePred, error) {
	d, ok := arg.(bson.D)
	if !ok || len(d) != 1 {
		return nil, badParam("geoWithin on %s needs $geometry or $centerSphere", name)
	}
	switch d[0].Key {
	case "$geometry":
		g, ok := parseGeometry(d[0].Value)
		if !ok || len(g.polygons) == 0 {
			return nil, badParam("geoWithin on %s needs a Polygon or MultiPolygon", name)
		}
		return func(v any) bool {
			fg, ok := parseGeometry(v)
			if !ok {
				x, y, ok := pairOf(v)
				if !ok {
					return false
				}
				fg = &geometry{points: [][2]float64{{x, y}}}
			}
			for _, p := range fg.allPoints() {
				if !g.containsPoint(p[0], p[1]) {
					return false
				}
			}
			return true
		}, nil
	case "$centerSphere":
		a, ok := d[0].Value.(bson.A)
		if !ok || len(a) != 2 {
			return nil, badParam("centerSphere on %s needs [[lng, lat], radius]", name)
		}
		x, y, ok := pairOf(a[0])
		r, ok2 := toFloat(a[1])
		if !ok || !ok2 || r < 0 {
			return nil, badParam("centerSphere on %s needs [[lng, lat], radius]", name)
		}
		return func(v any) bool {
			fg, ok := parseGeometry(v)
			if !ok {
				return false
			}
			for _, p := range fg.allPoints() {
				if haversine(x, y, p[0], p[1]) > r*earthRadius {
					return false
				}
			}
			return true
		}, nil
	}
	return nil, badParam("geoWithin on %s needs $geometry or $centerSphere", name)
}

func parseGeoIntersects(arg any, name string) (valuePred, error) {
	d, ok := arg.(bson.D)
	if !ok || len(d) != 1 || d[0].Key != "$geometry" {
		return nil, badParam("geoIntersects on %s needs $geometry", name)
	}
	g, ok := parseGeometry(d[0].Value)
	if !ok {
		return nil, badParam("geoIntersects on %s: invalid geometry", name)
	}
	return func(v any) bool {
		fg, ok := parseGeometry(v)
		return ok && intersects(fg, g)
	}, nil
}
