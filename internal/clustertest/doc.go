// Package clustertest holds the multi-replica tests of fn serve: several real fn serve
// processes on one PostgreSQL, driven by a round-robin client and the fn CLI. It has no code
// of its own beyond the tests.
package clustertest
