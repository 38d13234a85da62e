// Package security attacks a real fn serve (and fn dev where it is the target) with every item
// of the hosting threat model: forged tokens and signatures, takeovers, cross-app reads, escapes
// from the sandbox, resource exhaustion and slow clients. Its tests start the fn binary; it has
// no code of its own.
package security
