module github.com/llm-runtime/llm-runtime

go 1.26.8

require github.com/cockroachdb/datadriven v1.0.3

require (
	github.com/alecthomas/kong v1.17.0 // indirect
	github.com/pmezard/go-difflib v1.0.0 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
)
