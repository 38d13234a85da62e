package leanstorage

import (
	"sync"
	"time"
)

// Message is one SMS or email the service would have sent: fn keeps them in a local outbox
// (and logs them) instead of sending anything.
type Message struct {
	Time    time.Time `json:"time"`
	Channel string    `json:"channel"` // "sms" or "email"
	To      string    `json:"to"`
	// Purpose: verifyMobilePhone, verifyEmail, passwordReset, passwordResetBySms, login, smsCode.
	Purpose string `json:"purpose"`
	Code    string `json:"code,omitempty"`
	Text    string `json:"text"`
}

// Outbox keeps the latest messages, newest last.
type Outbox struct {
	mu   sync.Mutex
	msgs []Message
}

// OutboxSize is how many messages an Outbox keeps.
const OutboxSize = 200

func (o *Outbox) add(m Message) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.msgs = append(o.msgs, m)
	if len(o.msgs) > OutboxSize {
		o.msgs = append([]Message(nil), o.msgs[len(o.msgs)-OutboxSize:]...)
	}
}

// Messages returns a copy of the kept messages, oldest first.
func (o *Outbox) Messages() []Message {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Message(nil), o.msgs...)
}

// Outbox is where the service's SMS and emails go.
func (s *Service) Outbox() *Outbox { return s.outbox }
