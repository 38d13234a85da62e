package lcimport

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"sort"
	"strings"

	"github.com/fnhq/fn/store"
)

// ErrorPolicy says what a bad record does to an import.
type ErrorPolicy int

const (
	// Skip reports the record and goes on.
	Skip ErrorPolicy = iota
	// Abort stops the import at the first bad record.
	Abort
)

// Options tune an import.
type Options struct {
	DryRun  bool
	OnError ErrorPolicy
	// Classes limits the import to these classes (all when empty).
	Classes []string
	// MaxErrors is how many record errors the report keeps (100 when zero); the rest are
	// counted.
	MaxErrors int
	// Files, when set, downloads every _File object's content into the target.
	Files *FileOptions
	// Progress, when set, is called every ProgressEvery records (10,000 when zero) and at the
	// end of each class.
	Progress      func(Progress)
	ProgressEvery int
}

// Progress is how far an import got.
type Progress struct {
	Class   string
	Records int // records read so far, all classes
}

// ClassReport counts what happened to one class's objects.
type ClassReport struct {
	Added     int `json:"added"`
	Changed   int `json:"changed"`
	Unchanged int `json:"unchanged"`
	Failed    int `json:"failed"`
}

// Report is what an import did (or, with DryRun, would do).
type Report struct {
	DryRun        bool                    `json:"dryRun"`
	Classes       map[string]*ClassReport `json:"classes"`
	Errors        []string                `json:"errors,omitempty"`
	ErrorsOmitted int                     `json:"errorsOmitted,omitempty"`
	Sessions      int                     `json:"sessions"`
	Relations     map[string]FoldReport   `json:"relations,omitempty"`
	Files         *FileReport             `json:"files,omitempty"`
	Skipped       map[string]int          `json:"skippedClasses,omitempty"` // records of classes not asked for
}

// Totals sums the class reports.
func (r *Report) Totals() ClassReport {
	var t ClassReport
	for _, c := range r.Classes {
		t.Added += c.Added
		t.Changed += c.Changed
		t.Unchanged += c.Unchanged
		t.Failed += c.Failed
	}
	return t
}

// ClassNames lists the report's classes in order.
func (r *Report) ClassNames() []string { return sortedKeys(r.Classes) }

// limits are the options' error cap and progress interval (defaults for zero) and the set of
// classes to import (empty: all).
func (o Options) limits() (maxErrors, every int, only map[string]bool) {
	maxErrors, every = o.MaxErrors, o.ProgressEvery
	if maxErrors <= 0 {
		maxErrors = 100
	}
	if every <= 0 {
		every = 10000
	}
	only = map[string]bool{}
	for _, c := range o.Classes {
		only[c] = true
	}
	return maxErrors, every, only
}

// Import reads every record of src and upserts it into t. It returns the report and, when the
// import stopped early (Abort, a broken input, ctx), the error that stopped it. Nothing fires
// hooks: the target is written directly.
//
// Duplicate ids within one input are found with a set of 64-bit hashes of (class, objectId):
// the only memory an import keeps per record (1M objects: about 66 MiB of peak heap in all).
func Import(ctx context.Context, src Source, t Target, opts Options) (*Report, error) {
	rep := &Report{DryRun: opts.DryRun, Classes: map[string]*ClassReport{}}
	maxErrors, every, only := opts.limits()
	seed := maphash.MakeSeed()
	seen := map[uint64]struct{}{}
	committer, _ := src.(Committer)
	var files *fileLoader
	if opts.Files != nil && !opts.DryRun && !opts.Files.SkipContent {
		files = newFileLoader(ctx, t, opts.Files)
		defer files.stop()
	}
	joins := map[string]bool{}
	records := 0
	lastClass := ""
	class := func(name string) *ClassReport {
		c := rep.Classes[name]
		if c == nil {
			c = &ClassReport{}
			rep.Classes[name] = c
		}
		return c
	}
	fail := func(re *RecordError) error {
		class(re.Class).Failed++
		if len(rep.Errors) < maxErrors {
			rep.Errors = append(rep.Errors, re.Error())
		} else {
			rep.ErrorsOmitted++
		}
		if opts.OnError == Abort {
			return re
		}
		return nil
	}
	finish := func() {
		if files != nil {
			rep.Files = files.wait()
			files = nil
		}
	}
	for {
		rec, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var fe *fatalError
			var re *RecordError
			if errors.As(err, &fe) {
				fail(fe.RecordError)
				finish()
				return rep, fe.RecordError
			}
			if errors.As(err, &re) {
				if abort := fail(re); abort != nil {
					finish()
					return rep, abort
				}
				continue
			}
			finish()
			return rep, err
		}
		records++
		if opts.Progress != nil && (records%every == 0 || (rec.Class != lastClass && lastClass != "")) {
			opts.Progress(Progress{Class: rec.Class, Records: records})
		}
		lastClass = rec.Class
		if len(only) > 0 && !only[rec.Class] {
			if rep.Skipped == nil {
				rep.Skipped = map[string]int{}
			}
			rep.Skipped[rec.Class]++
			continue
		}
		err = importOne(ctx, rec, t, opts, rep, seed, seen, files, joins, class)
		var re *RecordError
		if err != nil && !errors.As(err, &re) {
			finish()
			return rep, err // the target failed: nothing more can be written
		}
		if re != nil {
			if abort := fail(re); abort != nil {
				// not committed: a resumed import tries this record again
				finish()
				return rep, abort
			}
		}
		if committer != nil {
			if cerr := committer.Commit(rec); cerr != nil {
				finish()
				return rep, cerr
			}
		}
	}
	if opts.Progress != nil {
		opts.Progress(Progress{Class: lastClass, Records: records})
	}
	finish()
	if folder, ok := t.(RelationFolder); ok && !opts.DryRun && len(joins) > 0 {
		rep.Relations = map[string]FoldReport{}
		names := sortedKeys(joins)
		sort.Strings(names)
		for _, j := range names {
			fr, err := folder.FoldRelation(ctx, j)
			rep.Relations[j] = fr
			if err != nil {
				return rep, fmt.Errorf("folding %s into its owners: %w", j, err)
			}
		}
	}
	return rep, ctx.Err()
}

func importOne(ctx context.Context, rec Record, t Target, opts Options, rep *Report, seed maphash.Seed, seen map[uint64]struct{},
	files *fileLoader, joins map[string]bool, class func(string) *ClassReport) error {
	c, err := convert(rec)
	if err != nil {
		return &RecordError{Pos: rec.Pos, Class: rec.Class, ID: idOf(rec.Fields), Err: err}
	}
	o := c.obj
	var h maphash.Hash
	h.SetSeed(seed)
	h.WriteString(o.Class)
	h.WriteByte(0)
	h.WriteString(o.ID)
	sum := h.Sum64()
	if _, dup := seen[sum]; dup {
		return &RecordError{Pos: rec.Pos, Class: o.Class, ID: o.ID, Err: fmt.Errorf("%w: it appeared earlier in the input; the first one was kept", ErrDuplicate)}
	}
	seen[sum] = struct{}{}
	var meta *FileMeta
	if o.Class == "_File" && opts.Files != nil {
		m, err := prepareFile(o, opts.Files)
		switch {
		case err != nil && files != nil:
			// the object is still imported: only its content cannot be fetched
			files.failed(fileJob{meta: FileMeta{ObjectID: o.ID}, pos: rec.Pos}, err)
		case err == nil:
			meta = m
		}
	}
	if opts.Files != nil && opts.Files.URL != nil {
		rewriteFileValues(o.Fields, opts.Files.URL)
	}
	out, err := t.Upsert(ctx, o, opts.DryRun)
	if err != nil {
		if errors.Is(err, store.ErrDuplicate) || errors.Is(err, ErrInvalid) {
			return &RecordError{Pos: rec.Pos, Class: o.Class, ID: o.ID, Err: err}
		}
		return fmt.Errorf("%s: %s %s: writing: %w", rec.Pos, o.Class, o.ID, err)
	}
	cr := class(o.Class)
	switch out {
	case Added:
		cr.Added++
	case Changed:
		cr.Changed++
	case Unchanged:
		cr.Unchanged++
	}
	if _, _, isJoin := JoinParts(o.Class); isJoin {
		joins[o.Class] = true
	}
	if c.sessionToken != "" {
		if !opts.DryRun {
			if err := t.PutSession(ctx, c.sessionToken, o.ID); err != nil {
				return &RecordError{Pos: rec.Pos, Class: o.Class, ID: o.ID, Err: fmt.Errorf("session: %w", err)}
			}
		}
		rep.Sessions++
	}
	if meta != nil && files != nil {
		files.add(*meta, rec.Pos)
	}
	return nil
}

func idOf(f map[string]any) string {
	id, _ := f["objectId"].(string)
	return truncate(id)
}

// rewriteFileValues points the File values an object holds (top level and in arrays) at the
// content's new URL, as the _File object itself is: LeanCloud clients read a File field's url
// straight from the object.
func rewriteFileValues(fields map[string]any, newURL func(*store.Object) string) {
	fix := func(v any) {
		m, ok := v.(map[string]any)
		if !ok || m["__type"] != "File" {
			return
		}
		id, _ := m["objectId"].(string)
		if id == "" {
			id, _ = m["id"].(string)
		}
		if !idRE().MatchString(id) {
			return
		}
		name, _ := m["name"].(string)
		m["url"] = newURL(&store.Object{Class: "_File", ID: id, Fields: map[string]any{"name": name}})
	}
	for k, v := range fields {
		if k == "url" || strings.HasPrefix(k, "_") {
			continue
		}
		if arr, ok := v.([]any); ok {
			for _, e := range arr {
				fix(e)
			}
			continue
		}
		fix(v)
	}
}
