package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"banger/api"
	"banger/api/errdefs"
)

// TestTemplatesListedAndDeleted: the dashboard lists templates with their
// sizes; a delete asks first, needs the form token and the page's origin,
// and removes the template.
func TestTemplatesListedAndDeleted(t *testing.T) {
	u := newUI(t)
	ctx := context.Background()
	u.w.CreateVM(t, "dev")
	tpl, err := u.w.D.SnapshotVM(ctx, "dev", "tpl", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, body := u.do(t, "GET", "/", nil, nil)
	for _, want := range []string{`data-template="tpl"`, `href="/templates/tpl/confirm"`,
		`<td data-field="bytes">` + fmtBytes(tpl.Bytes) + `</td>`, `<td data-field="state-bytes">` + fmtBytes(tpl.StateBytes) + `</td>`} {
		if !strings.Contains(body, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	code, _, body := u.do(t, "GET", "/templates/tpl/confirm", nil, nil)
	if code != 200 || !strings.Contains(body, "delete template tpl?") || !strings.Contains(body, `action="/templates/tpl/delete"`) {
		t.Fatalf("confirm page: %d\n%s", code, body)
	}
	m := tokenRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no form token on the confirm page:\n%s", body)
	}
	form := url.Values{"csrf": {m[1]}}
	same := map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": u.url}
	if code, _, _ := u.do(t, "POST", "/templates/tpl/delete", url.Values{"csrf": {"forged"}}, same); code != http.StatusForbidden {
		t.Errorf("delete with a forged token answered %d, want 403", code)
	}
	if code, _, _ := u.do(t, "POST", "/templates/tpl/delete", form, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}); code != http.StatusForbidden {
		t.Errorf("cross-site delete answered %d, want 403", code)
	}
	if _, err := u.w.D.Template(ctx, "tpl"); err != nil {
		t.Fatalf("a refused delete removed the template: %v", err)
	}
	for path, want := range map[string]int{"/templates/nope/confirm": 404, "/templates/..%2Fx/confirm": 404} {
		if code, _, _ := u.do(t, "GET", path, nil, nil); code != want {
			t.Errorf("GET %s: %d, want %d", path, code, want)
		}
	}
	code, hdr, _ := u.do(t, "POST", "/templates/tpl/delete", form, same)
	if code != http.StatusSeeOther || hdr.Get("Location") != "/" {
		t.Fatalf("delete: %d to %q, want 303 to /", code, hdr.Get("Location"))
	}
	waitFor(t, "the template to be deleted", func() bool {
		_, err := u.w.D.Template(ctx, "tpl")
		return errors.Is(err, errdefs.ErrNotFound)
	})
	if _, _, body := u.do(t, "GET", "/", nil, nil); strings.Contains(body, `data-template="tpl"`) {
		t.Error("the dashboard still lists the deleted template")
	}
	if code, _, _ := u.do(t, "POST", "/templates/tpl/delete", form, same); code != http.StatusNotFound {
		t.Errorf("deleting a deleted template answered %d, want 404", code)
	}
}

// TestBrowserTemplates: 'banger image list --json' gives the image its
// template; the dashboard shows it with its sizes, and its Delete button
// (with confirmation) removes it.
func TestBrowserTemplates(t *testing.T) {
	serveAPI := cliAgainstAPI(t)
	u := newUI(t)
	banger := serveAPI(u)
	ctx := browser(t)
	con := watchConsole(ctx)
	u.w.CreateVM(t, "dev")
	tpl, err := u.w.D.SnapshotVM(context.Background(), "dev", "dev-warm", nil)
	if err != nil {
		t.Fatal(err)
	}
	var ims []api.Image
	if err := json.Unmarshal([]byte(banger("image", "list", "--json")), &ims); err != nil {
		t.Fatal(err)
	}
	if len(ims) != 1 || len(ims[0].Templates) != 1 || ims[0].Templates[0].Name != "dev-warm" || ims[0].Templates[0].StateBytes != tpl.StateBytes {
		t.Errorf("image list --json = %+v; want image default with template dev-warm and its sizes", ims)
	}

	run(t, ctx, "opening the dashboard", chromedp.Navigate(TokenURL(u.url, u.secret)), chromedp.WaitVisible(chromedp.CSS(`tr[data-template="dev-warm"]`)))
	waitText(t, ctx, `tr[data-template="dev-warm"] [data-field="bytes"]`, fmtBytes(tpl.Bytes))
	waitText(t, ctx, `tr[data-template="dev-warm"] [data-field="state-bytes"]`, fmtBytes(tpl.StateBytes))
	screenshot(t, ctx, "web-ui-templates.png")
	run(t, ctx, "clicking delete",
		chromedp.Click(chromedp.CSS(`tr[data-template="dev-warm"] a[data-action="delete"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm`)))
	screenshot(t, ctx, "web-ui-template-delete.png")
	if _, err := u.w.D.Template(context.Background(), "dev-warm"); err != nil {
		t.Fatalf("the template is gone before the delete was confirmed: %v", err)
	}
	run(t, ctx, "confirming the delete", chromedp.Click(chromedp.CSS(`#confirm`)), chromedp.WaitVisible(chromedp.CSS(`#vms`)))
	waitFor(t, "the template to be deleted", func() bool {
		_, err := u.w.D.Template(context.Background(), "dev-warm")
		return errors.Is(err, errdefs.ErrNotFound)
	})
	waitFor(t, "the notice that the delete is done", func() bool {
		return strings.Contains(eval[string](t, ctx, `document.getElementById('notices').innerText`), "delete of template dev-warm done")
	})
	run(t, ctx, "reloading the dashboard", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#vms`)))
	if n := eval[int](t, ctx, `document.querySelectorAll('tr[data-template]').length`); n != 0 {
		t.Errorf("the dashboard lists %d templates after the delete", n)
	}
	if out := banger("image", "list"); strings.Contains(out, "dev-warm") {
		t.Errorf("image list still shows the deleted template:\n%s", out)
	}
	con.check(t)
}

func fmtBytes(n int64) string { return funcs["bytes"].(func(int64) string)(n) }
