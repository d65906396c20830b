// Package caller tells a worker's workflows who sent each Update: the
// Temporal identity of the client (an SDK client's, "<pid>@<host>@" by
// default, which the CLI v1.5.1 sends too; the UI 2.42.1 sends none), which
// the client puts in the Update's request
// (meta.identity) and the server hands to the worker and records in the
// history's WorkflowExecutionUpdateAccepted event, but which the Go SDK
// (v1.51) does not show workflow code: its UpdateInfo holds the ID and name
// only.
//
// Identities reads the requests in what the worker's client receives (a
// gRPC interceptor on its connection), as the worker polls them, and keeps
// each identity until the Update's handler takes it, which it does in the
// same workflow task: the task that delivers an Update carries its request.
// The handler records what it took with a side effect, so a replay reads the
// history, not this note. The note is bounded; an identity evicted or never
// seen is empty, and an Update never fails for it.
package caller

import (
	"context"
	"sync"

	protocolpb "go.temporal.io/api/protocol/v1"
	updatepb "go.temporal.io/api/update/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
)

// DefaultSize is how many identities Identities keeps unless told: far more
// than a worker's workflow tasks in flight deliver Updates at once.
const DefaultSize = 4096

// Identities notes the caller of each Update the worker receives, by the
// Update's ID. The zero value is not usable: use New.
type Identities struct {
	mu    sync.Mutex
	byID  map[string]string
	order []string
	size  int
}

// New returns Identities that keep the latest size identities.
func New(size int) *Identities {
	return &Identities{byID: map[string]string{}, size: max(size, 1)}
}

// Identity returns, and forgets, the identity of the client that sent the
// Update updateID; "" if it was never seen or was evicted.
func (c *Identities) Identity(updateID string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.byID[updateID]
	delete(c.byID, updateID)
	return id
}

// DialOption installs the note on a client's connection
// (client.Options.ConnectionOptions.DialOptions).
func (c *Identities) DialOption() grpc.DialOption {
	return grpc.WithChainUnaryInterceptor(c.intercept)
}

func (c *Identities) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if err == nil {
		c.read(reply)
	}
	return err
}

// read notes the Update requests in a reply that hands the worker a
// workflow task: a poll's, or the next task a completion returns at once.
func (c *Identities) read(reply any) {
	var task *workflowservice.PollWorkflowTaskQueueResponse
	switch r := reply.(type) {
	case *workflowservice.PollWorkflowTaskQueueResponse:
		task = r
	case *workflowservice.RespondWorkflowTaskCompletedResponse:
		task = r.GetWorkflowTask()
	default:
		return
	}
	for _, m := range task.GetMessages() {
		c.readMessage(m)
	}
}

func (c *Identities) readMessage(m *protocolpb.Message) {
	var req updatepb.Request
	if !m.GetBody().MessageIs(&req) || m.GetBody().UnmarshalTo(&req) != nil {
		return
	}
	id, identity := req.GetMeta().GetUpdateId(), req.GetMeta().GetIdentity()
	if id == "" || identity == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byID[id]; !ok {
		c.order = append(c.order, id)
	}
	c.byID[id] = identity
	// Past the bound the oldest go first, taken or not; order is compacted
	// once it holds twice the bound.
	for len(c.byID) > c.size {
		oldest := c.order[0]
		c.order = c.order[1:]
		delete(c.byID, oldest)
	}
	if len(c.order) > 2*c.size {
		kept := c.order[:0:0]
		for _, id := range c.order {
			if _, ok := c.byID[id]; ok {
				kept = append(kept, id)
			}
		}
		c.order = kept
	}
}
