package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/llm-runtime/llm-runtime/sandbox"
)

// CodeInvalidArguments is the code of a call whose arguments do not fit
// the tool's input schema.
const CodeInvalidArguments = "INVALID_ARGUMENTS"

// CodeAuditFailed is the code of a call whose audit record could not be
// written: its result is withheld.
const CodeAuditFailed = "AUDIT_FAILED"

// handlerFor is a tool's handler with typed arguments and output.
type handlerFor[In, Out any] func(context.Context, *mcp.CallToolRequest, In) (*mcp.CallToolResult, Out, error)

// addTool adds a tool with the schemas of In and Out. Arguments are
// validated against the input schema, as the SDK's own mcp.AddTool does;
// arguments that do not fit are a tool error with CodeInvalidArguments
// (the SDK's has no code). The output is marshalled once into the
// structured content, not decoded again to be validated against a schema
// it was made from: that round trip cost more than the operation.
func addTool[In, Out any](s *mcp.Server, t *mcp.Tool, h handlerFor[In, Out]) {
	out, err := jsonschema.For[Out](nil)
	if err != nil {
		panic(fmt.Sprintf("tool %s: output schema: %v", t.Name, err))
	}
	trimOutput(out)
	t.OutputSchema = out
	add(s, t, h, true)
}

// trimOutput keeps of an output schema what a program checks a result
// against: the fields and their types. Every client sends tools/list
// whole, but a model reads only the descriptions and the input schemas; so
// an output schema here has no descriptions (the package's docs say what
// each field is), no required fields and no null types (a field is left
// out rather than null, and an error result holds only what it has), no
// additionalProperties: false, and no "error" field: every tool's is the
// same ErrorInfo, said once in the package's docs, and an error result
// is marked isError.
func trimOutput(s *jsonschema.Schema) {
	if s == nil {
		return
	}
	s.Description, s.AdditionalProperties, s.Required = "", nil, nil
	if len(s.Types) == 2 && s.Types[0] == "null" {
		s.Type, s.Types = s.Types[1], nil
	}
	delete(s.Properties, "error")
	for _, p := range s.Properties {
		trimOutput(p)
	}
	trimOutput(s.Items)
}

// addTextTool adds a tool whose result is its text alone, with no output
// schema and no structured content but an error's: read_file, whose
// result is the file. Clients differ in which of the two a model reads
// (Claude Code, Codex and opencode give it the structured content when
// there is one, others the text), so a file in both would be sent twice
// and, in the structured content, read by the model as an escaped JSON
// string; as text alone every client gives the model the file once, as
// it is.
func addTextTool[In any](s *mcp.Server, t *mcp.Tool, h handlerFor[In, struct{}]) {
	add(s, t, h, false)
}

func add[In, Out any](s *mcp.Server, t *mcp.Tool, h handlerFor[In, Out], structured bool) {
	in, err := jsonschema.For[In](nil)
	if err != nil {
		panic(fmt.Sprintf("tool %s: input schema: %v", t.Name, err))
	}
	nonNullable(in)
	resolved, err := in.Resolve(nil)
	if err != nil {
		panic(fmt.Sprintf("tool %s: input schema: %v", t.Name, err))
	}
	t.InputSchema = in
	s.AddTool(t, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		raw := req.Params.Arguments
		args := map[string]any{}
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &args); err != nil {
				return invalid[Out](fmt.Errorf("the arguments are not a JSON object: %v", err)), nil
			}
		}
		if err := resolved.Validate(args); err != nil {
			return invalid[Out](err), nil
		}
		var v In
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &v); err != nil {
				return invalid[Out](err), nil
			}
		}
		res, o, err := h(ctx, req, v)
		if se := (*sandbox.Error)(nil); errors.As(err, &se) {
			return withError(o, errorInfo(se)), nil
		} else if err != nil {
			return withError(o, &ErrorInfo{Code: CodeAuditFailed, Message: err.Error()}), nil
		}
		if !structured {
			return res, nil
		}
		b, err := json.Marshal(o)
		if err != nil {
			return nil, fmt.Errorf("marshalling the result: %w", err)
		}
		res.StructuredContent = json.RawMessage(b)
		return res, nil
	})
}

// nonNullable makes the schema's array properties arrays, not "null or
// array": a missing list is left out, not sent as null.
func nonNullable(s *jsonschema.Schema) {
	for _, p := range s.Properties {
		if slices.Equal(p.Types, []string{"null", "array"}) {
			p.Types, p.Type = nil, "array"
		}
	}
}

// invalid is the result of arguments that do not fit.
func invalid[Out any](err error) *mcp.CallToolResult {
	var zero Out
	return withError(zero, &ErrorInfo{Code: CodeInvalidArguments, Message: err.Error()})
}

// withError is an error result: the error's text, and out as the
// structured content with its error field set to e.
func withError(out any, e *ErrorInfo) *mcp.CallToolResult {
	m := map[string]any{}
	if b, err := json.Marshal(out); err == nil {
		json.Unmarshal(b, &m)
	}
	for k, v := range m {
		if v == nil {
			delete(m, k) // a field is left out, never null
		}
	}
	m["error"] = e
	b, _ := json.Marshal(m)
	return &mcp.CallToolResult{IsError: true, StructuredContent: json.RawMessage(b),
		Content: []mcp.Content{&mcp.TextContent{Text: e.text()}}}
}
