package whitelist

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/llm-runtime/llm-runtime/config"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

func argvs(c Command) [][]string {
	var a [][]string
	for _, s := range c {
		a = append(a, s.Argv)
	}
	return a
}

func TestParseCommandWithoutAShell(t *testing.T) {
	ok := map[string][]string{
		"go test ./...":                {"go", "test", "./..."},
		"  ls   -la  ":                 {"ls", "-la"},
		`grep -r "two words" .`:        {"grep", "-r", "two words", "."},
		`echo 'a && b' "c|d" e\ f`:     {"echo", "a && b", "c|d", "e f"},
		`echo "q\"uote" '$HOME' $HOME`: {"echo", `q"uote`, "$HOME", "$HOME"},
		`echo ""`:                      {"echo", ""},
	}
	for line, want := range ok {
		c, err := Parse(line, false)
		if err != nil || len(c) != 1 || !reflect.DeepEqual(c[0].Argv, want) {
			t.Errorf("%q: %q, %v; want %q", line, argvs(c), err, want)
		}
		if w := c[0].known(); len(w) != len(want) {
			t.Errorf("%q: without a shell nothing is expanded, but only %q is known", line, w)
		}
	}
	for _, line := range []string{
		"ls && rm -rf x", "ls; rm -rf x", "ls | sh", "ls || rm x", "cat x > y", "cat < x", "sleep 1 &",
		"echo $(rm -rf /)", "echo `id`", `echo "$(id)"`, "(ls)", "echo 'unterminated", `echo "unterminated`,
		"", "   ", "ls 2>/dev/null", "echo $'\\x41'", "ls\nrm -rf x", "ls\x00", "cat \xff",
	} {
		if _, err := Parse(line, false); sandbox.AsError(err).Code != sandbox.CodeExecValidation {
			t.Errorf("%q accepted: %v", line, err)
		}
	}
}

func TestParseCommandWithAShellChecksEverySimpleCommand(t *testing.T) {
	c, err := Parse("go test ./... && go vet ./... | wc -l; echo done", true)
	want := [][]string{{"go", "test", "./..."}, {"go", "vet", "./..."}, {"wc", "-l"}, {"echo", "done"}}
	if err != nil || !reflect.DeepEqual(argvs(c), want) {
		t.Fatalf("got %q, %v", argvs(c), err)
	}
	w := New([]string{"go test", "go vet", "wc", "echo"})
	if err := w.Check(c, false); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"ls && rm -rf x", "go test && go run evil.go", "echo $(id)", "go test > out", "&& ls", "ls &&", "ls & rm x"} {
		c, err := Parse(line, true)
		if err == nil {
			err = New([]string{"go test", "ls", "echo"}).Check(c, false)
		}
		if sandbox.AsError(err).Code != sandbox.CodeExecValidation {
			t.Errorf("%q accepted", line)
		}
	}
}

// With a shell, the words the shell expands after the check are not known.
func TestParseCommandWithAShellMarksTheWordsItExpands(t *testing.T) {
	line := `ls *.go '*.go' "$HOME" '$HOME' \* ~ a{b,c} {a..c} {} x,y "a b" f?o [ab] ./...`
	open := []bool{false, true, false, true, false, false, true, true, true, false, false, false, true, true, false}
	c, err := Parse(line, true)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range c[0].Argv {
		if got := c[0].openAt(i) != ""; got != open[i] {
			t.Errorf("%q: open %v, want %v", w, got, open[i])
		}
	}
	c, _ = Parse(line, false)
	if len(c[0].known()) != len(open) {
		t.Error("without a shell a word is open")
	}
}

func TestWhitelistMatchesArgumentVectorsNotPrefixes(t *testing.T) {
	w := New([]string{"go test", "ls", " make  build "})
	for argv, want := range map[string]bool{
		"go test ./...": true, "go test": true, "go testx": false, "go": false, "go run x": false,
		"ls": true, "ls -la /": true, "lsblk": false, "make build": true, "make": false, "make install": false,
	} {
		c, err := Parse(argv, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := w.allows(c[0].Argv); got != want {
			t.Errorf("%q: allowed %v, want %v", argv, got, want)
		}
	}
	if !New([]string{"*"}).allows([]string{"anything", "at", "all"}) {
		t.Error("* does not allow everything")
	}
	if New(nil).allows([]string{"ls"}) {
		t.Error("an empty whitelist allows ls")
	}
}

// listed is the whitelist of the tests below: the default one, and the
// programs whose rules they test.
var listed = append(append([]string{}, config.DefaultWhitelist...),
	"xargs", "env", "nice", "nohup", "timeout", "stdbuf", "setsid", "flock", "time", "busybox", "chroot", "watch",
	"strace", "sudo", "tar", "ssh", "sh", "bash", "awk", "gawk", "sed", "go", "make", "git", "rg", "sort",
	"perl", "python3", "ruby", "node", "npx")

type whitelistCase struct {
	line string
	want string // a part of the reason it is refused; "" if it passes
}

func checkCases(t *testing.T, white []string, shell, writable bool, cases []whitelistCase) {
	t.Helper()
	w := New(white)
	for _, c := range cases {
		cmd, err := Parse(c.line, shell)
		if err == nil {
			err = w.Check(cmd, writable)
		}
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q (writable %v) refused: %v", c.line, writable, err)
		case c.want != "" && err == nil:
			t.Errorf("%q (writable %v) passes; want it refused: %s", c.line, writable, c.want)
		case c.want != "" && sandbox.AsError(err).Code != sandbox.CodeExecValidation:
			t.Errorf("%q: %v, want EXEC_VALIDATION", c.line, err)
		case c.want != "" && !strings.Contains(err.Error(), c.want):
			t.Errorf("%q: %v\nwant the reason to say %q", c.line, err, c.want)
		}
	}
}

// The red team's command: find -exec ran sh with ; and pipes, though
// exec.shell is false.
func TestWhitelistRefusesTheRedTeamsFindExec(t *testing.T) {
	redTeam := `find . -maxdepth 0 -exec sh -c "id; cat .env; mount" \;`
	checkCases(t, config.DefaultWhitelist, false, false, []whitelistCase{
		{redTeam, `find -exec starts "sh -c id; cat .env; mount", which is not on the whitelist`},
		{`find . -name '*.go'`, ""},
	})
	checkCases(t, listed, false, false, []whitelistCase{{redTeam, "sh runs any command given to it"}})
	checkCases(t, []string{"*"}, false, false, []whitelistCase{{redTeam, ""}})
}

func TestWhitelistFollowsWhatFindStarts(t *testing.T) {
	checkCases(t, listed, false, false, []whitelistCase{
		{`find . -name '*.go'`, ""},
		{`find -L . -type f -newermt 2020-01-01 -name x -o -path y -prune -print`, ""},
		{`find . -name '*.go' -exec grep -l main {} +`, ""},
		{`find . -type f -exec wc -l {} \;`, ""},
		{`find . -exec go vet ./... \;`, ""},
		{`find . -name -exec`, ""},                 // -exec is -name's pattern
		{`find . -exec grep x {} -exec sh \;`, ""}, // grep's arguments, up to the first ;
		{`find . -execdir sh -c id \;`, "find -execdir starts \"sh -c id\": sh runs any command"},
		{`find . -ok make \;`, ""},
		{`find . -okdir id \;`, `find -okdir starts "id", which is not on the whitelist`},
		{`find . -exec {} \;`, `"{}" is not known when the command is checked (find puts file names in place of {})`},
		{`find . -exec go vet {} \;`, `go's arguments decide what it starts or writes, and "{}" is not known`},
		{`find . -exec echo + -exec sh -c id \;`, "a + that does not follow {}"},
		{`find . -exec ls`, "no ; or {} + at the end"},
		{`find . -exec \;`, "has no command"},
		{`find . -exec find . -exec sh \;`, "find -exec starts \"find . -exec sh\": find -exec has no ;"},
		{`find . -frobnicate`, "expressions of find it has checked"},
		{`find . -delete`, "find -delete writes files, and exec is read-only"},
		{`find . -fprint out`, "find -fprint writes files"},
		{`find . -fprint0 out`, "find -fprint0 writes files"},
		{`find . -fls out`, "find -fls writes files"},
		{`find . -fprintf out %p`, "find -fprintf writes files"},
	})
	checkCases(t, listed, false, true, []whitelistCase{
		{`find . -name '*.tmp' -delete`, ""},
		{`find . -fprint out -fprint0 out0 -fls ls -fprintf f %p`, ""},
		{`find . -fprintf out`, "needs 2 arguments"},
	})
}

func TestWhitelistFollowsWhatXargsStarts(t *testing.T) {
	checkCases(t, listed, false, false, []whitelistCase{
		{`xargs grep foo`, ""},
		{`xargs`, ""}, // echo
		{`xargs -0 -r -n 1 -P 2 wc -l`, ""},
		{`xargs -I{} cat {}`, ""},
		{`xargs -i cat {}`, ""},
		{`xargs sh -c id`, "xargs starts \"sh -c id\": sh runs any command"},
		{`xargs id`, `xargs starts "id", which is not on the whitelist`},
		{`xargs go vet`, "go's arguments decide what it starts or writes, and xargs adds arguments read from its input"},
		{`xargs find .`, "find's arguments decide"},
		{`xargs -I{} {} -c id`, `"{}" is not known when the command is checked (xargs puts its input in place of "{}")`},
		{`xargs -I s go test`, `"test" is not known`},
		{`xargs --process-slot-var=BASH_ENV make`, "sets an environment variable of any name"},
		{`xargs --max-a=1 ls`, "llm-runtime lets through only the options of xargs it has checked"},
	})
	checkCases(t, []string{"xargs", "grep"}, false, false, []whitelistCase{{`xargs`, `xargs starts "echo", which is not on the whitelist`}})
}

func TestWhitelistFollowsWhatLaunchersStart(t *testing.T) {
	checkCases(t, listed, false, false, []whitelistCase{
		{`env FOO=1 go test ./...`, ""},
		{`env -i -u HOME - A=1 B=2 grep x f`, ""},
		{`env`, ""},
		{`env LD_PRELOAD=./x.so ls`, "makes the dynamic loader load other code"},
		{`env PATH=. ls`, "decides which file a command name runs"},
		{`env HOME=. git log`, "decides which configuration files programs read"},
		{`env GOFLAGS=-toolexec=sh go build ./...`, "configures the go command"},
		{`env GOPROXY=file:///workspace/proxy GOSUMDB=off GONOSUMDB=x go mod tidy`, ""},
		{`env GOPROXY=off go mod tidy`, ""},
		{`env GOPROXY=https://proxy.golang.org,direct go mod tidy`, "GOPROXY with direct makes go run git"},
		{`env 'GOPROXY=file:///p|direct' go mod tidy`, "GOPROXY with direct"},
		{`env GOPROXY= go mod tidy`, "an empty GOPROXY is the default"},
		{`env GOPRIVATE=* go mod tidy`, "configures the go command"},
		{`env 'BASH_FUNC_ls%%=() { id; }' make`, "defines shell functions"},
		{`env GIT_EXTERNAL_DIFF=sh git diff`, "configures git"},
		{`env -S "sh -c id"`, "splits a string into the command to start"},
		{`env -a sh busybox`, "starts the command under another name"},
		{`env --argv0=sh ls`, "starts the command under another name"},
		{`env -C /tmp ls`, "starts the command in another directory"},
		{`env -i sh -c id`, "env starts \"sh -c id\": sh runs any command"},
		{`env id`, `env starts "id", which is not on the whitelist`},
		{`nice -n 10 go test ./...`, ""},
		{`nice -5 grep x f`, ""},
		{`nice --adjustment=3 sh`, "nice starts \"sh\": sh runs any command"},
		{`nohup grep x f`, ""},
		{`nohup sh -c id`, "sh runs any command"},
		{`nohup -p 1`, "options of nohup it has checked"},
		{`timeout 5 grep x f`, ""},
		{`timeout -s KILL -k 1 5 go test ./...`, ""},
		{`timeout 5`, ""},
		{`timeout -s KILL 5 sh -c id`, "timeout starts \"sh -c id\": sh runs any command"},
		{`timeout 5 id`, `timeout starts "id", which is not on the whitelist`},
		{`stdbuf -oL -e 0 grep x f`, ""},
		{`stdbuf -o L sh`, "sh runs any command"},
		{`setsid -w grep x f`, ""},
		{`setsid sh -c id`, "sh runs any command"},
		{`flock /tmp/l grep x f`, ""},
		{`flock -x -w 5 /tmp/l go test ./...`, ""},
		{`flock 3`, ""},
		{`flock /tmp/l -c id`, "flock -c runs its command through a shell"},
		{`flock -c id /tmp/l`, "flock -c runs its command through a shell"},
		{`flock /tmp/l sh -c id`, "sh runs any command"},
		{`time go test ./...`, ""},
		{`time -p -o /tmp/t ls`, ""},
		{`time -p sh -c id`, "time starts \"sh -c id\": sh runs any command"},
		{`busybox ls -la`, ""},
		{`busybox`, ""},
		{`busybox --list`, ""},
		{`busybox sh -c id`, "busybox starts \"sh -c id\": sh runs any command"},
		{`busybox bash`, "busybox starts \"bash\": bash runs any command"},
		{`busybox id`, `busybox starts "id", which is not on the whitelist`},
		{`busybox find . -exec sh \;`, `find -exec starts "sh"`},
		{`busybox --install -s /tmp`, "busybox --install writes links"},
		{`env timeout 5 nice find . -exec sh -c "id" \;`, "find -exec starts \"sh -c id\": sh runs any command"},
		{`timeout 5 xargs env go test`, "env's arguments decide what it starts or writes, and xargs adds arguments read from its input"},
	})
}

func TestWhitelistRefusesShellsInterpretersAndOtherLaunchers(t *testing.T) {
	checkCases(t, listed, false, false, []whitelistCase{
		{`sh -c id`, "sh runs any command given to it"},
		{`sh script.sh`, "sh runs any command given to it"},
		{`sh`, "it is refused even when listed"},
		{`bash -c id`, "bash runs any command given to it"},
		{`/bin/sh -c id`, `"/bin/sh -c id" is not on the whitelist`},
		{`python3 tools/check.py --fast`, ""},
		{`python3 --version`, ""},
		{`python3 -c 'import os; os.system("id")'`, "python3 runs code given in its options"},
		{`python3 -m timeit 'import os'`, "python3 runs code given in its options"},
		{`python3`, "read from its input"},
		{`python3 /usr/lib/python3/timeit.py x`, "the script must be a file of the repository"},
		{`python3 ../x.py`, "the script must be a file of the repository"},
		{`perl -e 'system("id")'`, "perl runs code given in its options"},
		{`perl script.pl`, ""},
		{`ruby -e 'system("id")'`, "ruby runs code given"},
		{`node -e 'require("child_process").execSync("id")'`, "node runs code given"},
		{`node build.js`, ""},
		{`chroot / sh`, "chroot runs the program of that name in the new root"},
		{`watch ls`, "watch runs its command through sh -c"},
		{`strace ls`, "strace runs a program under its control"},
		{`sudo ls`, "sudo runs the command given to it"},
		{`tar -xf x.tar --to-command=sh`, "tar runs programs named in its options"},
		{`ssh -o ProxyCommand=id x`, "ssh runs programs named in its options"},
		{`npx cowsay`, "npx runs any program or package"},
	})
}

func TestWhitelistReadsAwkAndSedPrograms(t *testing.T) {
	checkCases(t, listed, false, false, []whitelistCase{
		{`awk '{print $1}' f`, ""},
		{`awk -F: -v x=1 '{print $x}' /etc/passwd`, ""},
		{`awk '$1 > 0 || $2 > 0 { n++ } END { print n }' f -`, ""},
		{`awk -e 'BEGIN { print 1 }' f`, ""},
		{`awk 'BEGIN{system("id")}'`, "awk's system() runs a shell command"},
		{`awk 'BEGIN{"id" | getline x; print x}'`, "a | in an awk program pipes to or from a shell command"},
		{`awk '{print | "sh"}'`, "a | in an awk program"},
		{`awk '{print |& "sh"}'`, "a | in an awk program"},
		{`awk '/a|b/'`, "in a string or a regular expression too"},
		{`awk '$1 ||| "sh"'`, "a | in an awk program"},
		{`awk -e 'BEGIN{system("id")}'`, "system() runs a shell command"},
		{`gawk 'BEGIN { f = "sys" "tem"; @f("id") }'`, "gawk's @ calls a function by name"},
		{`gawk '@load "filefuncs"'`, "gawk's @ calls a function by name"},
		{`awk -f prog.awk f`, "awk -f reads the program from a file"},
		{`gawk --exec prog.awk`, "reads the program from a file"},
		{`gawk -l filefuncs 'BEGIN{}'`, "loads an extension library"},
		{`awk -W exec prog.awk`, "-W options"},
		{`awk '{print}' -f evil.awk`, "a word after the program that looks like an option"},
		{`awk --characters-as-bytes '{print}'`, "options of awk it has checked"},

		{`sed -n 's/foo/bar/p' f`, ""},
		{`sed -e 's/a/b/' -e '$d' -E f`, ""},
		{`sed '/start/,/end/{s/x/y/g;p};$!N' f`, ""},
		{`sed 's|[a/]|x|2;y/abc/xyz/' f`, ""},
		{`sed -n '1~2p;/x/I,+3{=;l 5};0,/re/d;\,a,p' f`, ""},
		{`sed ':a;N;$!ba;s/\n/ /g' f`, ""},
		{`sed 'a hello; e id' f`, ""}, // text to the end of the line, for both seds
		{`sed 's/x/y/w /dev/stdout' f`, ""},
		{`sed 'r other' f`, ""},
		{`sed 's/a/b/e' f`, "sed's s///e flag runs the result as a shell command"},
		{`sed 's/a/b/ge' f`, "s///e"},
		{`sed '1e id' f`, "sed's e command runs a shell command"},
		{`sed -e p -e 'e id' f`, "sed's e command"},
		{`sed '/x/{e id' f`, "sed's e command"},
		{`sed 's/x/y/w out' f`, "sed's s///w writes files, and exec is read-only"},
		{`sed 's/x/y/ w out' f`, "sed's s///w writes files"},
		{`sed 'w out' f`, "sed's w writes files"},
		{`sed '$W out' f`, "sed's W writes files"},
		{`sed 'pw out' f`, "characters follow a command"},
		{`sed 'b x#;w out' f`, "a label holding } or #"},
		{`sed 's/[/]/x/' f`, "would end a regular expression holding [ in different places"},
		{`sed 's/[]/]/x/' f`, "in different places"},
		{`sed 's/[[:alpha:]/]/x/' f`, "in different places"},
		{`sed 'y/[/]/' f`, "in different places"},
		{`sed 's/a/b' f`, "a '/' delimiter is missing"},
		{`sed -i 's/a/b/' f`, "sed -i edits files in place, and exec is read-only"},
		{`sed -ie 's/a/b/' f`, "sed -i edits files in place"},
		{`sed 's/a/b/' -i f`, "sed -i edits files in place"},
		{`sed --in-place=.bak 's/a/b/' f`, "sed --in-place edits files"},
		{`sed -f script.sed f`, "sed -f reads its script from a file"},
		{`sed -n 'k' f`, `'k' is not a sed command llm-runtime knows`},
	})
	checkCases(t, listed, false, true, []whitelistCase{
		{`sed -i 's/a/b/w out' f`, ""},
		{`sed -i.bak -e 'W out' f`, ""},
		{`sed 's/a/b/e' f`, "runs the result as a shell command"},
	})
}

func TestWhitelistFollowsMakeGoGitAndTheOthers(t *testing.T) {
	checkCases(t, listed, false, false, []whitelistCase{
		{`make`, ""},
		{`make test`, ""},
		{`make -j4 -k -C sub -f build/Makefile build lint`, ""},
		{`make -j 4 test`, ""},
		{`make SHELL=/bin/sh`, "make SHELL=/bin/sh: a variable set on the command line goes into the Makefile's shell commands"},
		{`make test 'CC=sh -c id'`, "a variable set on the command line"},
		{`make 'x;id'`, "a target with characters other than"},
		{`make --eval='x:;id'`, "make --eval evaluates its argument as makefile text"},
		{`make -E 'x:;id'`, "make -E evaluates"},
		{`make -f -`, "reads the makefile from its input"},
		{`make -f /etc/x.mk`, "it must name a file or directory of the repository"},
		{`make -C ../other`, "it must name a file or directory of the repository"},
		{`make --evil`, "options of make it has checked"},

		{`go test ./...`, ""},
		{`go build ./...`, ""},
		{`go vet ./...`, ""},
		{`go mod tidy`, ""},
		{`go test -run 'TestX$' -count=1 -race ./... -args -exec sh`, ""}, // the test binary's arguments
		{`go build -ldflags='-s -w -X main.v=1' -gcflags=all=-N ./...`, ""},
		{`go generate ./...`, ""},
		{`go env GOPATH`, ""},
		{`go run .`, ""},
		{`go run -race ./cmd/x -exec`, "go run -exec runs the program it names"},
		{`go run -race -tags x ./cmd/x arg`, ""},
		{`go run main.go util.go arg`, ""},
		{`go build -C sub .`, ""},
		{`go test -exec sh ./...`, "go test -exec runs the program it names"},
		{`go test ./... --exec=sh`, "go test -exec runs the program it names"},
		{`go build -toolexec sh ./...`, "go build -toolexec runs the program it names"},
		{`go vet -vettool=./x ./...`, "go vet -vettool runs the program it names"},
		{`go fix -fixtool=./x ./...`, "go fix -fixtool runs the program it names"},
		{`go doc -http`, "go doc -http runs a documentation server"},
		{`go doc fmt.Println`, ""},
		{`go build -ldflags '-linkmode external -extld ./sh' .`, "-extld or -extldflags names the linker"},
		{`go build -ldflags=-extldflags=-Wl,-plugin=x.so .`, "-extld or -extldflags"},
		{`go build -compiler gccgo .`, "builds with gccgo"},
		{`go build -gccgoflags x .`, "builds with gccgo"},
		{`go build -C /tmp .`, "it must name a directory of the repository"},
		{`go run cmd/test2json sh -c id`, "go run runs only a package of the repository"},
		{`go run -debug-trace ./x cmd/test2json sh`, "go run runs only a package of the repository"},
		{`go run golang.org/x/tools/cmd/stringer@latest`, "go run runs only a package of the repository"},
		{`go run -frob ./x`, "flags of go run it has checked"},
		{`go tool test2json sh -c id`, "go tool runs the toolchain's tools"},
		{`go get example.com/x`, "go get starts version control programs"},
		{`go bug`, "go bug opens a web browser"},
		{`go env -w GOFLAGS=-toolexec=sh`, "go env -w changes go's configuration"},
		{`go frob`, "go commands it has checked"},

		{`git status`, ""},
		{`git --no-pager log --oneline -5`, ""},
		{`git diff --no-ext-diff --stat HEAD~1 -- x`, ""},
		{`git grep -n --or -e a -e b`, ""},
		{`git -c core.pager=sh log`, "git -c sets configuration"},
		{`git -c alias.x='!id' x`, "git -c sets configuration"},
		{`git --config-env=core.pager=X log`, "git --config-env sets configuration"},
		{`git --git-dir=x status`, "git --git-dir makes git use another repository"},
		{`git -C sub status`, "git -C makes git use another repository"},
		{`git -p log`, "starts a pager"},
		{`git x`, "git runs an alias or a git-x program"},
		{`git difftool`, "llm-runtime lets through only the git commands that read the repository"},
		{`git bisect run sh`, "only the git commands that read"},
		{`git diff --ext-diff`, "--ext-diff runs a program"},
		{`git log --ext`, "--ext-diff runs a program"},
		{`git grep -O foo`, "-O opens the files found in a pager"},
		{`git grep -nOless foo`, "-O opens"},
		{`git grep --open-files-in-pager=sh foo`, "--open-files-in-pager"},
		{`git diff --output=x`, "--output"},

		{`rg -n foo`, ""},
		{`rg -e z -ez foo`, ""},
		{`rg --pre ./x foo`, "rg --pre starts programs"},
		{`rg --pre=sh foo`, "rg --pre starts programs"},
		{`rg -z foo`, "-z (--search-zip) starts decompression programs"},
		{`rg -iz foo`, "-z (--search-zip)"},
		{`rg --search-zip foo`, "rg --search-zip starts programs"},
		{`rg --hostname-bin=x foo`, "rg --hostname-bin starts programs"},

		{`sort -u -o out f`, ""},
		{`sort --compress-program=sh f`, "--compress-program runs the program it names"},
		{`sort --comp=sh f`, "--compress-program runs"},
	})
	// An entry naming the arguments grants nothing past the rules.
	checkCases(t, []string{"go test -exec", "find . -exec"}, false, false, []whitelistCase{
		{`go test -exec sh ./...`, "go test -exec runs the program it names"},
		{`find . -exec sh \;`, `find -exec starts "sh", which is not on the whitelist`},
	})
}

func TestWhitelistWithAShellRefusesExpandedArgumentsWhereTheyDecide(t *testing.T) {
	checkCases(t, listed, true, false, []whitelistCase{
		{`find . -name '*.go' | xargs grep foo`, ""},
		{`find . -exec grep x {} \; && echo done`, ""},
		{`ls *.go; cat $HOME/x; echo {a,b}`, ""},
		{`find . -name '$X'`, ""},
		{`find . $X`, `find's arguments decide what it starts or writes, and "$X" is not known when the command is checked (the shell expands it`},
		{`find . -name "$X"`, `"$X" is not known`},
		{`find {a,b}`, `"{a,b}" is not known`},
		{`go test -exec${IFS}sh ./...`, `"-exec${IFS}sh" is not known`},
		{`go test -exe?=sh ./...`, `"-exe?=sh" is not known`},
		{`$X -c id`, `"$X -c id" is not on the whitelist (exec.whitelist:`},
		{`echo ok | sh`, "sh runs any command"},
		{`ls | xargs sh`, "sh runs any command"},
	})
	checkCases(t, listed, false, false, []whitelistCase{{`find . $X`, ""}}) // without a shell, $X is a starting point
}

func TestWhitelistStarAllowsAnythingWithoutChecks(t *testing.T) {
	checkCases(t, []string{"ls", "*"}, true, false, []whitelistCase{
		{`find . -exec sh -c id \;`, ""},
		{`sh -c id`, ""},
		{`sed -i 's/a/b/e' f`, ""},
		{`$X`, ""},
	})
}

func TestProgramNamesDropPathsVersionsAndAliases(t *testing.T) {
	for in, want := range map[string]string{
		"python3.12": "python", "/usr/bin/gawk": "awk", "go1.22.0": "go", "bash": "sh", "/bin/ash": "sh",
		"linux32": "linux32", "ls": "ls", "./find": "find", "perl5.36": "perl", "nodejs": "node", "base64": "base64",
	} {
		if got := ProgramName(in); got != want {
			t.Errorf("programName(%q) = %q, want %q", in, got, want)
		}
	}
}

// ruleless are the programs of the default whitelist that have no rule:
// their arguments make them start nothing (docs/exec.md says so).
var ruleless = map[string]bool{"ls": true, "cat": true, "grep": true, "head": true, "tail": true, "wc": true, "echo": true, "pwd": true, "true": true}

func TestEveryProgramOfTheDefaultWhitelistIsConsidered(t *testing.T) {
	for _, e := range config.DefaultWhitelist {
		name := ProgramName(strings.Fields(e)[0])
		if _, ok := rules[name]; !ok && !ruleless[name] {
			t.Errorf("%q: its program %s has no rule and is not known to start nothing", e, name)
		}
	}
}

// The exec reference (docs/exec.md) names every program with a rule, an
// alias or a refusal.
func TestTheExecDocNamesEveryProgramTheWhitelistChecks(t *testing.T) {
	b, err := os.ReadFile("../docs/exec.md")
	if err != nil {
		t.Fatal(err)
	}
	exec := string(b)
	var names []string
	for n := range rules {
		names = append(names, n)
	}
	for n := range refused {
		names = append(names, n)
	}
	for n := range aliases {
		names = append(names, n)
	}
	for n := range ruleless {
		names = append(names, n)
	}
	for _, n := range names {
		if !strings.Contains(exec, "`"+n+"`") && !strings.Contains(exec, "`"+n+" ") {
			t.Errorf("docs/exec.md does not name `%s`", n)
		}
	}
}
