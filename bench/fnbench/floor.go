//go:build unix

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// The floor is the shape fn has, with nothing of fn in it: a Go net/http server that passes each
// request body over a pipe to one Node process running the same function, and writes back what
// Node answers. It gathers concurrent requests into one pipe write as the engine does and checks
// that the body is JSON, and does nothing else: no routing, keys, identities, limits, timeouts,
// log records or request ids. What fn measures above it is fn's own work; what the floor
// measures against bare node:http is the price of the two processes the design asks for.

// floorName is the floor's row in the load tables.
const floorName = "floor: Go net/http → pipe → node, nothing of fn"

// floorEnv marks the fnbench process started as the floor server.
const floorEnv = "FNBENCH_FLOOR"

// floorWorker is the Node side: requests on fd 3, {"id":N,"event":…} a line; answers on fd 4,
// {"id":N,"value":…} a line, each written when the function's promise settles.
const floorWorker = `const net = require('net')
const fn = require(process.argv[2])
const input = new net.Socket({ fd: 3, readable: true, writable: false })
const output = new net.Socket({ fd: 4, readable: false, writable: true })
let buffered = ''
input.setEncoding('utf8')
input.on('data', (chunk) => {
  buffered += chunk
  let nl
  while ((nl = buffered.indexOf('\n')) >= 0) {
    const m = JSON.parse(buffered.slice(0, nl))
    buffered = buffered.slice(nl + 1)
    Promise.resolve(fn.main(m.event, {})).then((v) => output.write('{"id":' + m.id + ',"value":' + JSON.stringify(v) + '}\n'))
  }
})
input.on('end', () => process.exit(0))
`

// startFloor starts the floor server (this program again, with floorEnv set) for the function in
// fnFile; it returns its URL, pid and stop.
func startFloor(dir, fnFile string) (string, int, func()) {
	worker := filepath.Join(dir, "floor-worker.js")
	must(os.WriteFile(worker, []byte(floorWorker), 0o644))
	self, err := os.Executable()
	must(err)
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), floorEnv+"=1", "FNBENCH_FLOOR_WORKER="+worker, "FNBENCH_FLOOR_FN="+fnFile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = os.Stderr
	out, _ := cmd.StdoutPipe()
	must(cmd.Start())
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) == "" {
		must(fmt.Errorf("the floor server did not start"))
	}
	return "http://127.0.0.1:" + strings.TrimSpace(line) + "/", cmd.Process.Pid, func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}
}

// floorServer is the floor's process: it runs until its parent kills its process group.
func floorServer() {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "fnbench floor:", err)
		os.Exit(1)
	}
	toWorker, workerIn, err := os.Pipe()
	if err != nil {
		fail(err)
	}
	workerOut, fromWorker, err := os.Pipe()
	if err != nil {
		fail(err)
	}
	node := exec.Command("node", os.Getenv("FNBENCH_FLOOR_WORKER"), os.Getenv("FNBENCH_FLOOR_FN"))
	node.ExtraFiles = []*os.File{toWorker, fromWorker}
	node.Stderr = os.Stderr
	if err := node.Start(); err != nil {
		fail(err)
	}
	toWorker.Close()
	fromWorker.Close()
	p := &floorPipe{in: workerIn, waiting: map[uint64]chan []byte{}}
	go p.read(workerOut)
	replies := sync.Pool{New: func() any { return make(chan []byte, 1) }}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil || !json.Valid(body) {
			http.Error(w, "the body is not JSON", http.StatusBadRequest)
			return
		}
		ch := replies.Get().(chan []byte)
		p.mu.Lock()
		p.next++
		id := p.next
		p.waiting[id] = ch
		p.mu.Unlock()
		msg := make([]byte, 0, len(body)+40)
		msg = append(msg, `{"id":`...)
		msg = strconv.AppendUint(msg, id, 10)
		msg = append(msg, `,"event":`...)
		msg = append(append(msg, body...), "}\n"...)
		p.send(msg)
		value := <-ch
		replies.Put(ch)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(value)))
		w.Write(value)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	fail(http.Serve(l, handler))
}

// floorPipe is the Go end of the worker's pipes.
type floorPipe struct {
	in      *os.File
	wmu     sync.Mutex
	writing bool
	queued  []byte
	mu      sync.Mutex
	next    uint64
	waiting map[uint64]chan []byte
}

// send writes msg, or queues it for the caller that is writing (the engine's gathering).
func (p *floorPipe) send(msg []byte) {
	p.wmu.Lock()
	if p.writing {
		p.queued = append(p.queued, msg...)
		p.wmu.Unlock()
		return
	}
	p.writing = true
	p.wmu.Unlock()
	for {
		if _, err := p.in.Write(msg); err != nil {
			os.Exit(1)
		}
		p.wmu.Lock()
		if len(p.queued) == 0 {
			p.writing = false
			p.wmu.Unlock()
			return
		}
		msg, p.queued = p.queued, nil
		p.wmu.Unlock()
	}
}

// read hands each answer to the request waiting for it.
func (p *floorPipe) read(r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	prefix := []byte(`{"id":`)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			os.Exit(0) // the worker is gone
		}
		rest, ok := bytes.CutPrefix(line, prefix)
		comma := bytes.IndexByte(rest, ',')
		if !ok || comma < 0 || len(rest) < comma+len(`,"value":}`)+1 {
			fmt.Fprintf(os.Stderr, "fnbench floor: unreadable answer %q\n", line)
			os.Exit(1)
		}
		id, _ := strconv.ParseUint(string(rest[:comma]), 10, 64)
		value := append([]byte(nil), rest[comma+len(`,"value":`):len(rest)-2]...)
		p.mu.Lock()
		ch := p.waiting[id]
		delete(p.waiting, id)
		p.mu.Unlock()
		if ch != nil {
			ch <- value
		}
	}
}
