package leanstorage

import (
	"math"
	"net/http"
	"sort"

	"github.com/fnhq/fn/store"
)

// geoPoint is a GeoPoint in degrees.
type geoPoint struct{ lat, lng float64 }

const (
	earthRadiusKm    = 6371.0
	earthRadiusMiles = 3958.8
)

func asGeoPoint(v any) (geoPoint, bool) {
	m, ok := v.(map[string]any)
	if !ok || m["__type"] != "GeoPoint" {
		return geoPoint{}, false
	}
	lat, ok1 := m["latitude"].(float64)
	lng, ok2 := m["longitude"].(float64)
	return geoPoint{lat, lng}, ok1 && ok2
}

func parsePoint(v any, what string) (geoPoint, error) {
	p, ok := asGeoPoint(v)
	if !ok {
		// [longitude, latitude] as in $centerSphere and $polygon
		if arr, isArr := v.([]any); isArr && len(arr) == 2 {
			lng, ok1 := arr[0].(float64)
			lat, ok2 := arr[1].(float64)
			p, ok = geoPoint{lat, lng}, ok1 && ok2
		}
	}
	if !ok || p.lat < -90 || p.lat > 90 || p.lng < -180 || p.lng > 180 {
		return geoPoint{}, apiErr(http.StatusBadRequest, 102, "Invalid query: %s takes a GeoPoint (latitude -90..90, longitude -180..180).", what)
	}
	return p, nil
}

// distanceRadians is the great-circle distance (haversine).
func distanceRadians(a, b geoPoint) float64 {
	rad := math.Pi / 180
	dLat := (b.lat - a.lat) * rad
	dLng := (b.lng - a.lng) * rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(a.lat*rad)*math.Cos(b.lat*rad)*math.Sin(dLng/2)*math.Sin(dLng/2)
	return 2 * math.Asin(math.Min(1, math.Sqrt(h)))
}

// nearCondition reads $nearSphere and its $maxDistance* (limit < 0: none), in radians.
func nearCondition(ops map[string]any) (geoPoint, float64, error) {
	p, err := parsePoint(ops["$nearSphere"], "$nearSphere")
	if err != nil {
		return geoPoint{}, 0, err
	}
	limit := -1.0
	for op, scale := range map[string]float64{"$maxDistance": 1, "$maxDistanceInRadians": 1,
		"$maxDistanceInKilometers": 1 / earthRadiusKm, "$maxDistanceInMiles": 1 / earthRadiusMiles} {
		if v, has := ops[op]; has {
			d, ok := v.(float64)
			if !ok || d < 0 {
				return geoPoint{}, 0, apiErr(http.StatusBadRequest, 102, "Invalid query: %s takes a non-negative number.", op)
			}
			limit = d * scale
		}
	}
	return p, limit, nil
}

func usesNear(where map[string]any) bool {
	for _, cond := range where {
		if ops, ok := cond.(map[string]any); ok {
			if _, has := ops["$nearSphere"]; has {
				return true
			}
		}
	}
	return false
}

func sortByDistance(objs []*store.Object, key string, from geoPoint) {
	dist := func(o *store.Object) float64 {
		v, _ := lookupView(view{o: o}, key)
		p, _ := asGeoPoint(v)
		return distanceRadians(from, p)
	}
	sort.SliceStable(objs, func(i, j int) bool { return dist(objs[i]) < dist(objs[j]) })
}

// shape is the region of a $within / $geoWithin.
type shape interface{ contains(geoPoint) bool }

type box struct{ sw, ne geoPoint }

func (b box) contains(p geoPoint) bool {
	return p.lat >= b.sw.lat && p.lat <= b.ne.lat && p.lng >= b.sw.lng && p.lng <= b.ne.lng
}

type polygon []geoPoint

// contains by ray casting over latitude/longitude (fine for the small regions apps query).
func (poly polygon) contains(p geoPoint) bool {
	in := false
	for i, j := 0, len(poly)-1; i < len(poly); j, i = i, i+1 {
		a, b := poly[i], poly[j]
		if (a.lat > p.lat) != (b.lat > p.lat) && p.lng < (b.lng-a.lng)*(p.lat-a.lat)/(b.lat-a.lat)+a.lng {
			in = !in
		}
	}
	return in
}

type sphere struct {
	center geoPoint
	radius float64 // radians
}

func (c sphere) contains(p geoPoint) bool { return distanceRadians(c.center, p) <= c.radius }

// maxPolygonPoints bounds a $polygon.
const maxPolygonPoints = 1000

func parseShape(op string, arg any) (shape, error) {
	m, ok := arg.(map[string]any)
	bad := apiErr(http.StatusBadRequest, 102, "Invalid query: %s takes {$box: [southwest, northeast]}, {$polygon: [points]} or {$centerSphere: [[lng, lat], radians]}.", op)
	if !ok {
		return nil, bad
	}
	if v, has := m["$box"]; has {
		arr, ok := v.([]any)
		if !ok || len(arr) != 2 {
			return nil, bad
		}
		sw, err := parsePoint(arr[0], "$box")
		if err != nil {
			return nil, err
		}
		ne, err := parsePoint(arr[1], "$box")
		if err != nil {
			return nil, err
		}
		if sw.lat > ne.lat || sw.lng > ne.lng {
			return nil, apiErr(http.StatusBadRequest, 102, "Invalid query: $box takes the southwest corner first.")
		}
		return box{sw, ne}, nil
	}
	if v, has := m["$polygon"]; has {
		arr, ok := v.([]any)
		if !ok || len(arr) < 3 || len(arr) > maxPolygonPoints {
			return nil, apiErr(http.StatusBadRequest, 102, "Invalid query: $polygon takes 3 to %d points.", maxPolygonPoints)
		}
		poly := make(polygon, len(arr))
		for i, pv := range arr {
			p, err := parsePoint(pv, "$polygon")
			if err != nil {
				return nil, err
			}
			poly[i] = p
		}
		return poly, nil
	}
	if v, has := m["$centerSphere"]; has {
		arr, ok := v.([]any)
		if !ok || len(arr) != 2 {
			return nil, bad
		}
		c, err := parsePoint(arr[0], "$centerSphere")
		if err != nil {
			return nil, err
		}
		r, ok := arr[1].(float64)
		if !ok || r < 0 {
			return nil, bad
		}
		return sphere{c, r}, nil
	}
	return nil, bad
}
