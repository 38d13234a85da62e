package leanstorage

import (
	"bytes"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/image/draw"
)

// Thumbnails as LeanCloud's file domain makes them: ?imageView2/<mode>/w/<W>/h/<H>/q/<Q>/format/<F>
// (Qiniu's syntax). Modes 1 (crop to exactly W×H, centred) and 2 (fit inside W×H) are served;
// the others answer 400. Decoding is bounded: sources over 20 MB or 50 megapixels are refused
// before they are decoded, outputs are at most 4096 px a side, and two thumbnails are made at a time.
const (
	maxThumbSource = 20 << 20
	maxThumbPixels = 50_000_000
	maxThumbSide   = 4096
)

var thumbSlots = make(chan struct{}, 2)

type thumbSpec struct {
	mode, w, h, q int
	format        string
}

func parseImageView(raw string) (*thumbSpec, error) {
	rest, ok := strings.CutPrefix(raw, "imageView2/")
	if !ok {
		return nil, nil
	}
	parts := strings.Split(rest, "/")
	mode, err := strconv.Atoi(parts[0])
	if err != nil {
		return nil, fmt.Errorf("imageView2: the mode must be a number")
	}
	if mode != 1 && mode != 2 {
		return nil, fmt.Errorf("imageView2 mode %d is not supported (1: crop, 2: fit)", mode)
	}
	sp := &thumbSpec{mode: mode, q: 85}
	for i := 1; i+1 < len(parts); i += 2 {
		k, v := parts[i], parts[i+1]
		if k == "format" {
			switch v {
			case "jpg", "jpeg", "png", "gif":
				sp.format = v
			default:
				return nil, fmt.Errorf("imageView2: format %q is not supported (jpg, png, gif)", v)
			}
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("imageView2: %s must be a positive number", k)
		}
		switch k {
		case "w":
			sp.w = n
		case "h":
			sp.h = n
		case "q":
			sp.q = min(n, 100)
		default:
			return nil, fmt.Errorf("imageView2: unknown parameter %q", k)
		}
	}
	if len(parts)%2 == 0 {
		return nil, fmt.Errorf("imageView2: parameters come in name/value pairs")
	}
	if sp.w == 0 && sp.h == 0 {
		return nil, fmt.Errorf("imageView2 needs w or h")
	}
	if sp.w > maxThumbSide || sp.h > maxThumbSide {
		return nil, fmt.Errorf("imageView2: w and h are at most %d", maxThumbSide)
	}
	return sp, nil
}

// box is the output size and, for mode 1, the centred source rectangle it is cut from.
func (sp *thumbSpec) box(src image.Rectangle) (image.Rectangle, image.Rectangle) {
	sw, sh := src.Dx(), src.Dy()
	w, h := sp.w, sp.h
	switch {
	case w == 0:
		w = max(1, sw*h/sh)
	case h == 0:
		h = max(1, sh*w/sw)
	}
	if sp.mode == 2 {
		// fit inside w×h, never larger than the source
		scale := min(float64(w)/float64(sw), float64(h)/float64(sh), 1)
		return image.Rect(0, 0, max(1, int(float64(sw)*scale+0.5)), max(1, int(float64(sh)*scale+0.5))), src
	}
	w, h = min(w, maxThumbSide), min(h, maxThumbSide)
	// crop the source to the output's aspect ratio, centred
	cw, ch := sw, sw*h/w
	if ch > sh {
		cw, ch = sh*w/h, sh
	}
	x0, y0 := src.Min.X+(sw-cw)/2, src.Min.Y+(sh-ch)/2
	return image.Rect(0, 0, w, h), image.Rect(x0, y0, x0+cw, y0+ch)
}

// serveThumbnail answers an imageView2 query for an image content; false when the query is not
// one (the original is served).
func serveThumbnail(w http.ResponseWriter, r *http.Request, content io.ReadSeeker, size int64, modTime time.Time, etag string,
	fail func(int, string)) bool {
	sp, err := parseImageView(r.URL.RawQuery)
	if sp == nil && err == nil {
		return false
	}
	if err != nil {
		fail(http.StatusBadRequest, err.Error())
		return true
	}
	if size > maxThumbSource {
		fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("imageView2: the image is larger than %d bytes", maxThumbSource))
		return true
	}
	cfg, format, err := image.DecodeConfig(content)
	if err != nil {
		fail(http.StatusBadRequest, "imageView2: the file is not a JPEG, PNG or GIF image")
		return true
	}
	if cfg.Width*cfg.Height > maxThumbPixels || cfg.Width <= 0 || cfg.Height <= 0 {
		fail(http.StatusRequestEntityTooLarge, "imageView2: the image has too many pixels")
		return true
	}
	select {
	case thumbSlots <- struct{}{}:
		defer func() { <-thumbSlots }()
	case <-r.Context().Done():
		return true
	}
	if _, err := content.Seek(0, io.SeekStart); err != nil {
		fail(http.StatusInternalServerError, "the file cannot be read")
		return true
	}
	src, _, err := image.Decode(content)
	if err != nil {
		fail(http.StatusBadRequest, "imageView2: the image cannot be decoded")
		return true
	}
	out, from := sp.box(src.Bounds())
	dst := image.NewRGBA(out)
	draw.CatmullRom.Scale(dst, out, src, from, draw.Src, nil)
	if sp.format != "" {
		format = sp.format
	}
	var buf bytes.Buffer
	ctype := "image/jpeg"
	switch format {
	case "png":
		ctype, err = "image/png", png.Encode(&buf, dst)
	case "gif":
		ctype, err = "image/gif", gif.Encode(&buf, dst, nil)
	default:
		err = jpeg.Encode(&buf, dst, &jpeg.Options{Quality: sp.q})
	}
	if err != nil {
		fail(http.StatusInternalServerError, "imageView2: the thumbnail cannot be encoded")
		return true
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	if etag != "" {
		h.Set("ETag", `"`+etag+"-"+strconv.Itoa(out.Dx())+"x"+strconv.Itoa(out.Dy())+"-"+strconv.Itoa(sp.mode)+format+strconv.Itoa(sp.q)+`"`)
	}
	http.ServeContent(w, r, "", modTime, bytes.NewReader(buf.Bytes()))
	return true
}
