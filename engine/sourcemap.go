package engine

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/go-sourcemap/sourcemap"
)

// mapper rewrites bundle positions (/proj/.fn/dev/login.js:12:5) in stack traces and log text to
// the original sources (functions/login/index.js:5:11). Source maps are read lazily, the first
// time a position in their bundle needs mapping, and cached until the bundle file changes.
type mapper struct {
	dir string
	mu  sync.Mutex
	sms map[string]*cachedMap
}

type cachedMap struct {
	size, mtime int64
	sm          *sourcemap.Consumer
}

func newMapper(dir string) *mapper { return &mapper{dir: dir, sms: map[string]*cachedMap{}} }

// positionRE matches "<path>.js:<line>:<col>", optionally as a file:// URL.
var positionRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?:file://)?(/[^\s():]+\.js):(\d+):(\d+)`) })

func (m *mapper) mapText(text string) string {
	if text == "" || !strings.Contains(text, ".js:") {
		return text
	}
	return positionRE().ReplaceAllStringFunc(text, func(match string) string {
		sub := positionRE().FindStringSubmatch(match)
		file := sub[1]
		line, _ := strconv.Atoi(sub[2])
		col, _ := strconv.Atoi(sub[3])
		sm := m.consumer(file)
		if sm == nil {
			return m.rel(file) + ":" + sub[2] + ":" + sub[3]
		}
		// Node reports 1-based lines and columns; source maps use 1-based lines, 0-based columns.
		src, _, sline, scol, ok := sm.Source(line, col-1)
		if !ok || src == "" {
			return m.rel(file) + ":" + sub[2] + ":" + sub[3]
		}
		return m.source(file, src) + ":" + strconv.Itoa(sline) + ":" + strconv.Itoa(scol+1)
	})
}

// source names a mapped source file: relative to the project when it is inside it; otherwise (a
// deployed bundle, whose map still points at the project it was built from: "../../functions/
// sum/index.js" from .fn/deploy) as the project-relative path the map records, never a server path.
func (m *mapper) source(bundle, src string) string {
	if filepath.IsAbs(src) {
		return m.rel(src)
	}
	joined := filepath.Join(filepath.Dir(bundle), src)
	if r := m.rel(joined); r != joined || m.dir == "" {
		return r
	}
	clean := filepath.ToSlash(filepath.Clean(src))
	for strings.HasPrefix(clean, "../") {
		clean = clean[3:]
	}
	return clean
}

// rel shows paths inside the project relative to it.
func (m *mapper) rel(path string) string {
	if m.dir == "" {
		return path
	}
	if r, err := filepath.Rel(m.dir, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

func (m *mapper) consumer(file string) *sourcemap.Consumer {
	st, err := os.Stat(file + ".map")
	if err != nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.sms[file]; ok && c.size == st.Size() && c.mtime == st.ModTime().UnixNano() {
		return c.sm
	}
	data, err := os.ReadFile(file + ".map")
	if err != nil {
		return nil
	}
	sm, err := sourcemap.Parse(file+".map", data)
	if err != nil {
		return nil
	}
	m.sms[file] = &cachedMap{size: st.Size(), mtime: st.ModTime().UnixNano(), sm: sm}
	return sm
}
