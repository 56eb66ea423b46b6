package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"golang.org/x/term"
)

// ui is grape's client.LoginUI: it prints the URL, tries a browser, and
// reads the code with a masked Bubble Tea input on a terminal, or as a
// plain line from a pipe.
type ui struct {
	in      *os.File
	out     io.Writer
	browser bool
	tty     bool
	lines   *bufio.Reader
	notice  string // why the previous code was refused
}

func newUI(_ context.Context, in *os.File, out io.Writer, browser bool) *ui {
	u := &ui{in: in, out: out, browser: browser}
	u.tty = in != nil && term.IsTerminal(int(in.Fd()))
	if !u.tty && in != nil {
		u.lines = bufio.NewReader(in)
	}
	return u
}

func (u *ui) Open(loginURL string) error {
	fmt.Fprintf(u.out, "To log in, open this URL in a browser and approve the request:\n\n    %s\n\n", loginURL)
	if u.browser && openBrowser(loginURL) {
		fmt.Fprintln(u.out, "(Opened in your browser.)")
	}
	return nil
}

func (u *ui) CodeRejected(err error, attemptsLeft int) {
	u.notice = fmt.Sprintf("%v (%d attempt%s left)", err, attemptsLeft, plural(attemptsLeft))
	if !u.tty {
		fmt.Fprintln(u.out, u.notice)
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func (u *ui) Prompt(ctx context.Context) (string, error) {
	if u.tty {
		return promptTTY(ctx, u.in, u.out, u.notice)
	}
	if u.lines == nil {
		return "", errors.New("no input to read the code from")
	}
	fmt.Fprint(u.out, "Enter the code shown in your browser: ")
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := u.lines.ReadString('\n')
		ch <- result{line, err}
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(u.out)
		return "", ctx.Err()
	case r := <-ch:
		if r.err == io.EOF && strings.TrimSpace(r.line) != "" {
			r.err = nil
		}
		if r.err == io.EOF {
			fmt.Fprintln(u.out)
			return "", errors.New("no code: input ended")
		}
		return r.line, r.err
	}
}

// openBrowser starts the platform's URL opener, if there is one; it never
// fails the login. On Linux and the BSDs it needs a graphical session, as
// xdg-open may otherwise start a text browser on this very terminal.
func openBrowser(url string) bool {
	var name string
	var args []string
	switch runtime.GOOS {
	case "darwin":
		name = "open"
	case "windows":
		name, args = "rundll32", []string{"url.dll,FileProtocolHandler"}
	default:
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return false
		}
		name = "xdg-open"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return false
	}
	cmd := exec.Command(path, append(args, url)...)
	if err := cmd.Start(); err != nil {
		return false
	}
	go cmd.Wait()
	return true
}

// promptTTY reads the code with a masked text input: the user sees one
// bullet per character, paste works, Enter submits, Ctrl-C or Esc cancels.
func promptTTY(ctx context.Context, in *os.File, out io.Writer, notice string) (string, error) {
	p := tea.NewProgram(newCodeModel(notice), tea.WithContext(ctx), tea.WithInput(in), tea.WithOutput(out))
	final, err := p.Run()
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	if errors.Is(err, tea.ErrInterrupted) {
		return "", errCancelled
	}
	if err != nil {
		return "", err
	}
	m := final.(codeModel)
	if m.cancelled {
		return "", errCancelled
	}
	return m.input.Value(), nil
}

type codeModel struct {
	input     textinput.Model
	notice    string
	submitted bool
	cancelled bool
}

func newCodeModel(notice string) codeModel {
	ti := textinput.New()
	ti.Prompt = "Code: "
	ti.EchoMode = textinput.EchoPassword
	ti.EchoCharacter = '•'
	ti.CharLimit = 32 // room for a pasted "K7Q-X2M" with spaces
	ti.Focus()
	return codeModel{input: ti, notice: notice}
}

func (m codeModel) Init() tea.Cmd { return textinput.Blink }

func (m codeModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if k, ok := msg.(tea.KeyMsg); ok {
		switch k.Type {
		case tea.KeyEnter:
			m.submitted = true
			return m, tea.Quit
		case tea.KeyCtrlC, tea.KeyEsc:
			m.cancelled = true
			return m, tea.Quit
		}
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(msg)
	return m, cmd
}

func (m codeModel) View() string {
	var b strings.Builder
	if m.notice != "" {
		b.WriteString(m.notice + "\n")
	}
	b.WriteString("Enter the code shown in your browser (Esc to cancel).\n")
	if m.submitted || m.cancelled {
		// Final frame: no cursor.
		b.WriteString(m.input.Prompt + strings.Repeat(string(m.input.EchoCharacter), len([]rune(m.input.Value()))) + "\n")
		return b.String()
	}
	b.WriteString(m.input.View() + "\n")
	return b.String()
}
