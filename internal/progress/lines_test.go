package progress

import (
	"strings"
	"testing"

	"banger/api"
)

func TestLineWriter(t *testing.T) {
	var lines []string
	lw := NewLineWriter(func(ev api.Event) { lines = append(lines, ev.Step+":"+ev.Message) }, "log")
	lw.Write([]byte("one\ntw"))
	lw.Write([]byte("o\r\n\nthree"))
	lw.Flush()
	if got := strings.Join(lines, "|"); got != "log:one|log:two|log:three" {
		t.Errorf("events = %q", got)
	}
	for i := 0; i < 30; i++ {
		lw.Write([]byte("line\n"))
	}
	if n := strings.Count(lw.Tail(), "\n") + 1; n != TailLines {
		t.Errorf("tail keeps %d lines, want %d", n, TailLines)
	}
}
