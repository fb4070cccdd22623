package edit_test

import (
	"fmt"

	"github.com/llm-runtime/llm-runtime/edit"
)

func Example() {
	file := []byte("package flag\n\n// check returns err.\n// The tests call it\n// with nil.\nfunc check() error {\n\treturn nil\n}\n")
	body := []byte(`<<<<<<< SEARCH
	return nil
=======
	return err
>>>>>>> REPLACE
<<<<<<< SEARCH
func check() error {
=======
func check(err error) error {
>>>>>>> REPLACE
`)
	blocks, err := edit.Parse(body)
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := edit.Apply("flag.go", file, blocks)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(res.Diff)
	// Output:
	// --- a/flag.go
	// +++ b/flag.go
	// @@ -3,6 +3,6 @@
	//  // check returns err.
	//  // The tests call it
	//  // with nil.
	// -func check() error {
	// -	return nil
	// +func check(err error) error {
	// +	return err
	//  }
}
