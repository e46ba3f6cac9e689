// Package kafka produces the seed's flow PingReport messages to a Kafka
// topic with franz-go, at least once: every message is first written to a
// bounded on-disk spool and removed only after the brokers acknowledged it,
// so broker outages and daemon restarts lose nothing.
package kafka

import (
	"crypto/rand"
	"fmt"
	"time"
)

// Status is a flow status carried by a PingReport.
type Status string

// Statuses of the seed document: a flow is operational, or failed after
// fail-delay without a successful ping.
const (
	StatusOperational Status = "OPERATIONAL"
	StatusFailed      Status = "FAILED"
)

// Class names of the seed's PingReport message.
const (
	InfoMessageClazz    = "org.openkilda.messaging.info.InfoMessage"
	FlowPingReportClazz = "org.openkilda.messaging.info.flow.FlowPingReport"
)

// Message is the seed's PingReport message. Field order follows the seed:
//
//	{"clazz":…,"payload":{"clazz":…,"report":{"flowid":…,"status":…},"timestamp":…},"timestamp":…,"correlation_id":…}
type Message struct {
	Clazz         string  `json:"clazz"`
	Payload       Payload `json:"payload"`
	Timestamp     int64   `json:"timestamp"` // milliseconds since the epoch
	CorrelationID string  `json:"correlation_id"`
}

// Payload is the FlowPingReport inside a Message.
type Payload struct {
	Clazz     string `json:"clazz"`
	Report    Report `json:"report"`
	Timestamp int64  `json:"timestamp"` // milliseconds since the epoch
}

// Report names the flow and its status.
type Report struct {
	FlowID string `json:"flowid"`
	Status Status `json:"status"`
}

// NewPingReport builds the message for flowID changing to st at time at,
// with a random (version 4) UUID as correlation id.
func NewPingReport(flowID string, st Status, at time.Time) Message {
	ms := at.UnixMilli()
	return Message{
		Clazz: InfoMessageClazz,
		Payload: Payload{
			Clazz:     FlowPingReportClazz,
			Report:    Report{FlowID: flowID, Status: st},
			Timestamp: ms,
		},
		Timestamp:     ms,
		CorrelationID: NewUUID(),
	}
}

// NewUUID returns a random RFC 9562 version 4 UUID in its text form.
func NewUUID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
