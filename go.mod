module github.com/llm-runtime/llm-runtime

go 1.26.8

require (
	github.com/alecthomas/kong v1.17.0
	github.com/cockroachdb/datadriven v1.0.3
	go.yaml.in/yaml/v3 v3.0.6
)

require github.com/pmezard/go-difflib v1.0.0 // indirect
