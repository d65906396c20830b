package caller

import (
	"context"
	"strconv"
	"testing"

	protocolpb "go.temporal.io/api/protocol/v1"
	updatepb "go.temporal.io/api/update/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"
)

func request(t *testing.T, updateID, identity string) *protocolpb.Message {
	t.Helper()
	body, err := anypb.New(&updatepb.Request{Meta: &updatepb.Meta{UpdateId: updateID, Identity: identity}})
	if err != nil {
		t.Fatal(err)
	}
	return &protocolpb.Message{Id: updateID + "/request", ProtocolInstanceId: updateID, Body: body}
}

// received runs reply through the interceptor as the worker's client
// receives it.
func received(t *testing.T, c *Identities, reply any) {
	t.Helper()
	invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }
	if err := c.intercept(context.Background(), "/temporal.api.workflowservice.v1.WorkflowService/PollWorkflowTaskQueue",
		nil, reply, nil, invoker); err != nil {
		t.Fatal(err)
	}
}

// The identity of an Update delivered by a poll, or by the task a
// completion returns at once, is told once, by the Update's ID; other
// messages and replies are ignored.
func TestIdentityOfEachUpdateReceived(t *testing.T) {
	c := New(10)
	ack, err := anypb.New(&updatepb.Acceptance{AcceptedRequestMessageId: "x"})
	if err != nil {
		t.Fatal(err)
	}
	received(t, c, &workflowservice.PollWorkflowTaskQueueResponse{Messages: []*protocolpb.Message{
		request(t, "u1", "temporal-cli:ops@host"), {Id: "other", Body: ack},
	}})
	received(t, c, &workflowservice.RespondWorkflowTaskCompletedResponse{WorkflowTask: &workflowservice.PollWorkflowTaskQueueResponse{
		Messages: []*protocolpb.Message{request(t, "u2", "webui")}}})
	received(t, c, &workflowservice.DescribeNamespaceResponse{})

	if got := c.Identity("u1"); got != "temporal-cli:ops@host" {
		t.Errorf("u1's caller = %q", got)
	}
	if got := c.Identity("u1"); got != "" {
		t.Errorf("u1's caller told twice: %q", got)
	}
	if got := c.Identity("u2"); got != "webui" {
		t.Errorf("u2's caller = %q", got)
	}
	if got := c.Identity("unknown"); got != "" {
		t.Errorf("an Update never received has caller %q", got)
	}
}

// The note keeps the latest identities only, however many Updates arrive
// that no workflow takes (refused by their validators, say).
func TestIdentitiesStayBounded(t *testing.T) {
	c := New(3)
	for i := range 1000 {
		id := strconv.Itoa(i)
		received(t, c, &workflowservice.PollWorkflowTaskQueueResponse{Messages: []*protocolpb.Message{request(t, id, "caller-"+id)}})
	}
	if len(c.byID) != 3 || len(c.order) > 6 {
		t.Fatalf("kept %d identities, %d in order; want 3, at most 6", len(c.byID), len(c.order))
	}
	if got := c.Identity("999"); got != "caller-999" {
		t.Errorf("the latest caller = %q", got)
	}
	if got := c.Identity("0"); got != "" {
		t.Errorf("the first caller is still kept: %q", got)
	}
}
