package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	uiUser     = "oncall"
	uiPassword = "correct horse battery staple"
	topic      = "orders"
	partitions = 3
	group      = "billing"
	xssGroup   = `<img src=x onerror=alert(1)>`
)

// TestConsoleTour logs in to the console in headless Chromium and walks every page against
// a real cluster (etcd with authentication, versitygw, two broker processes) while franz-go
// clients produce and consume, checking what an on-call engineer relies on: the topic's
// partitions, leaders and offsets as Kafka reports them; a consumer group's lag rising while
// it is paused and falling to 0 as it catches up; the charts moving; a produced record in
// the viewer; a hostile group name shown as text; etcd untouched by the console; a killed
// broker shown gone and back; logout; a wrong password; no JavaScript error anywhere.
func TestConsoleTour(t *testing.T) {
	c := startCluster(t, 0, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cl := newClient(t, c.bootstrap(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	produce(t, ctx, cl, 30) // 10 per partition
	marked := &kgo.Record{Topic: topic, Partition: 1, Key: []byte("order-42"), Value: []byte("hello console ✓"),
		Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("abc-123")}}}
	if err := cl.ProduceSync(ctx, marked).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// --- credentials unset: a warning, and the API refuses everything --------------------
	unset := startConsole(t, c)
	b := newBrowser(t)
	b.open(unset.URL)
	b.waitFor("the missing-login warning", 30*time.Second,
		`!document.getElementById("login-warning").hidden && document.getElementById("login-submit").disabled && document.getElementById("view").hidden`,
		`document.body.innerText`)
	if s := b.str(`document.getElementById("login-warning").textContent`); !strings.Contains(s, "KAFSCALE_UI_USERNAME") {
		t.Errorf("warning %q does not say what to set", s)
	}
	b.screenshot("login-unconfigured")
	for _, path := range []string{"api/overview", "api/topics", "api/groups", "api/history"} {
		if code, _ := unset.get(path); code != http.StatusServiceUnavailable {
			t.Errorf("credentials unset: GET %s = %d, want 503", path, code)
		}
	}

	con := startConsole(t, c, "KAFSCALE_UI_USERNAME="+uiUser, "KAFSCALE_UI_PASSWORD="+uiPassword)

	// --- wrong password refused ----------------------------------------------------------
	b.open(con.URL)
	b.waitFor("the login form", 30*time.Second, `!document.getElementById("login").hidden && !document.getElementById("login-submit").disabled`, `document.body.innerText`)
	login(b, uiUser, "wrong password")
	b.waitFor("the refusal", 30*time.Second, `document.getElementById("login-error").textContent.includes("Wrong username or password") && document.getElementById("view").hidden`,
		`document.getElementById("login-error").textContent`)
	b.screenshot("login-wrong-password")
	if code, _ := con.get("api/overview"); code != http.StatusUnauthorized {
		t.Errorf("GET api/overview without a session = %d, want 401", code)
	}

	// --- log in; overview --------------------------------------------------------------
	login(b, uiUser, uiPassword)
	b.waitFor("both brokers live and healthy", 60*time.Second,
		`["0", "1"].every(id => { const r = document.querySelector('#brokers tr[data-node-id="' + id + '"]');
			return r && r.dataset.live === "true" && r.querySelector(".s3-health").textContent === "healthy" && r.querySelector(".drain").textContent === "serving"; })`,
		`document.getElementById("brokers") && document.getElementById("brokers").innerText`)
	if s := b.str(`document.getElementById("etcd-status").textContent`); !strings.Contains(s, "reachable") || strings.Contains(s, "unreachable") {
		t.Errorf("etcd card %q", s)
	}
	if s := b.str(`document.getElementById("username").textContent`); s != uiUser {
		t.Errorf("logged in as %q", s)
	}
	b.screenshot("overview")

	// --- topics: partition count, leaders and offsets as Kafka reports them --------------
	b.open(con.URL + "#/topics")
	b.waitFor("the topic in the list with 3 partitions", 30*time.Second,
		`[...document.querySelectorAll("#topics tbody tr")].some(r => r.dataset.topic === "`+topic+`" && r.cells[1].dataset.value === "3")`,
		`document.getElementById("topics") && document.getElementById("topics").innerText`)
	b.screenshot("topics")
	kv := kafkaView(t, ctx, adm)
	b.open(con.URL + "#/topic/" + topic)
	want := make([][]string, partitions)
	for p := range int32(partitions) {
		want[p] = []string{strconv.Itoa(int(p)), strconv.Itoa(int(kv.leaders[p])), strconv.Itoa(int(kv.epochs[p])), "0", strconv.FormatInt(kv.ends[p], 10)}
	}
	wantJSON := jsonString(t, want)
	b.waitFor("partitions with Kafka's leaders, leader epochs and high watermarks", 30*time.Second,
		`JSON.stringify([...document.querySelectorAll("#partitions tbody tr")].map(r => [0, 1, 2, 3, 4].map(i => r.cells[i].dataset.value))) === `+strconv.Quote(wantJSON),
		`[...document.querySelectorAll("#partitions tbody tr")].map(r => [0, 1, 2, 3, 4].map(i => r.cells[i].dataset.value))`)
	b.screenshot("topic")

	// --- a consumer group: lag 0, rises while paused, back to 0 ----------------------------
	consumer := newClient(t, c.bootstrap(), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.ClientID("billing-worker"))
	consume(t, ctx, consumer, 31)
	b.open(con.URL + "#/group/" + url.PathEscape(group))
	b.waitFor("the group caught up (lag 0) with its member", 60*time.Second,
		`document.getElementById("group-lag").dataset.value === "0" && document.querySelector("#group-lag .value").textContent === "0"
			&& document.getElementById("members").innerText.includes("billing-worker")
			&& document.querySelectorAll("#offsets tbody tr").length === 3`,
		`document.getElementById("view").innerText`)
	b.screenshot("group-caught-up")
	// Paused: the member stays in the group (franz-go heartbeats) but polls nothing.
	produce(t, ctx, cl, 9)
	b.waitFor("the lag of the paused group to reach 9 (3 per partition)", 60*time.Second,
		`document.getElementById("group-lag").dataset.value === "9" && document.querySelector("#group-lag .value").textContent === "9"
			&& [...document.querySelectorAll("#offsets tbody tr")].every(r => r.cells[4].dataset.value === "3")`,
		`document.getElementById("view").innerText`)
	b.screenshot("group-lagging")
	b.open(con.URL + "#/groups")
	b.waitFor("the lag chart to show the lag", 30*time.Second,
		`document.querySelector('#chart-lag .legend [data-series="`+group+`"]').dataset.last === "9"`,
		`document.getElementById("chart-lag").innerText`)
	consume(t, ctx, consumer, 9)
	b.waitFor("the lag chart to fall back to 0", 60*time.Second,
		`document.querySelector('#chart-lag .legend [data-series="`+group+`"]').dataset.last === "0"
			&& document.querySelector('#groups tr[data-group="`+group+`"]').cells[5].dataset.value === "0"`,
		`document.getElementById("view").innerText`)
	b.screenshot("groups")

	// --- charts move, and survive a reload ------------------------------------------------
	b.open(con.URL + "#/overview")
	b.waitFor("the produce chart", 30*time.Second, `document.querySelector("#chart-produce path")`, `document.getElementById("view").innerText`)
	before := b.str(`document.querySelector("#chart-produce").dataset.samples`)
	burst := time.Now().UnixMilli()
	produce(t, ctx, cl, 300)
	b.waitFor("a produce rate above zero in the chart, sampled after the burst began", 60*time.Second,
		`[...document.querySelectorAll("#chart-produce .legend [data-series]")].some(s => Number(s.dataset.lastActive) >= `+strconv.FormatInt(burst, 10)+`)`,
		`[...document.querySelectorAll("#chart-produce .legend [data-series]")].map(s => s.dataset.lastActive)`)
	b.screenshot("overview-charts")
	// The theme follows the browser's preference.
	light := b.str(`getComputedStyle(document.body).backgroundColor`)
	b.colorScheme("dark")
	b.waitFor("the dark theme", 10*time.Second, `getComputedStyle(document.body).backgroundColor !== `+strconv.Quote(light), `getComputedStyle(document.body).backgroundColor`)
	if bg := b.str(`getComputedStyle(document.body).backgroundColor`); bg != "rgb(13, 17, 23)" {
		t.Errorf("dark background %s (light %s)", bg, light)
	}
	b.screenshot("overview-dark")
	b.colorScheme("light")
	path := b.str(`[...document.querySelectorAll("#chart-produce path")].map(p => p.getAttribute("d")).join("|")`)
	b.waitFor("the chart to move", 30*time.Second,
		`[...document.querySelectorAll("#chart-produce path")].map(p => p.getAttribute("d")).join("|") !== `+strconv.Quote(path), `null`)
	samples := b.str(`document.querySelector("#chart-produce").dataset.samples`)
	b.run("reload", chromedp.Reload())
	b.waitFor("the history kept across the reload", 30*time.Second,
		`Number(document.querySelector("#chart-produce").dataset.samples) >= `+samples+` && Number(document.querySelector("#chart-produce").dataset.samples) > `+before,
		`document.querySelector("#chart-produce").dataset.samples`)
	consumer.Close()

	// --- a hostile group name is text -----------------------------------------------------
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: 1, LeaderEpoch: -1})
	if _, err := adm.CommitOffsets(ctx, xssGroup, offs); err != nil {
		t.Fatalf("commit for %s: %v", xssGroup, err)
	}
	b.open(con.URL + "#/groups")
	b.waitFor("the hostile group listed as text", 30*time.Second,
		`[...document.querySelectorAll("#groups tbody tr")].some(r => r.dataset.group === `+strconv.Quote(xssGroup)+` && r.cells[0].textContent === `+strconv.Quote(xssGroup)+`)`,
		`document.getElementById("groups").innerText`)
	b.open(con.URL + "#/group/" + url.PathEscape(xssGroup))
	b.waitFor("the hostile group's page", 30*time.Second, `document.getElementById("group-name") && document.getElementById("group-name").textContent === `+strconv.Quote(xssGroup), `document.getElementById("view").innerText`)
	var imgs int
	b.eval(`document.querySelectorAll("img:not(.brand img)").length`, &imgs)
	if imgs != 0 {
		t.Errorf("the page holds %d img elements besides the logo: the group name became markup", imgs)
	}
	b.screenshot("group-hostile-name")

	// --- record viewer ----------------------------------------------------------------------
	b.open(con.URL + fmt.Sprintf("#/records?topic=%s&partition=1&mode=offset&from=%d&limit=1&format=text", topic, marked.Offset))
	b.waitFor("the marked record", 60*time.Second,
		`(() => { const r = document.querySelector('#records tbody tr'); return r && r.dataset.offset === "`+strconv.FormatInt(marked.Offset, 10)+`"
			&& r.querySelector(".rv-key").textContent === "order-42" && r.querySelector(".rv-value").textContent === "hello console ✓"
			&& r.querySelector(".rv-headers").textContent === "trace=abc-123"; })()`,
		`document.getElementById("view").innerText`)
	b.screenshot("records")
	b.open(con.URL + fmt.Sprintf("#/records?topic=%s&partition=1&mode=offset&from=%d&limit=1&format=hex", topic, marked.Offset))
	b.waitFor("the marked record in hex", 60*time.Second,
		`(() => { const r = document.querySelector('#records tbody tr'); return r && r.querySelector(".rv-value").textContent.startsWith("68 65 6c 6c 6f 20 63"); })()`,
		`document.getElementById("view").innerText`)
	ends := kafkaView(t, ctx, adm).ends
	b.open(con.URL + fmt.Sprintf("#/records?topic=%s&partition=2&limit=5", topic))
	b.waitFor("the latest 5 records of partition 2", 60*time.Second,
		`(() => { const rs = [...document.querySelectorAll('#records tbody tr')]; return rs.length === 5 && rs[4].dataset.offset === "`+strconv.FormatInt(ends[2]-1, 10)+`"; })()`,
		`document.getElementById("view").innerText`)

	// --- the console does not write to etcd ----------------------------------------------------
	// Its etcd user may only read, so any write would fail; and across a tour of every page,
	// with the sampler reading every second, etcd's revision does not move. Clients are
	// idle, so the brokers write nothing either: wait until the revision holds still first.
	consoleEtcd := c.etcdClient(t, etcdConsoleUser, etcdConsolePassword)
	if _, err := consoleEtcd.Put(ctx, "/kafscale/default/kafscale/probe", "x"); err == nil {
		t.Fatal("the console's etcd user can write: the read-only check below would prove nothing")
	}
	rev := quietRevision(t, c)
	samplesBefore := con.metric(`kafscale_console_samples_total{result="ok"}`)
	for _, page := range []string{"#/overview", "#/topics", "#/topic/" + topic, "#/groups", "#/group/" + group,
		fmt.Sprintf("#/records?topic=%s&partition=0&limit=10", topic)} {
		b.open(con.URL + page)
		b.waitFor("page "+page, 30*time.Second, `!document.getElementById("view").hidden && document.getElementById("view").children.length > 0
			&& !document.getElementById("view").innerText.includes("Could not")`, `document.getElementById("view").innerText`)
	}
	b.open(con.URL + "#/overview")
	b.waitFor("two live refreshes", 30*time.Second, `document.getElementById("brokers")`, `null`)
	first := b.str(`document.getElementById("updated").textContent`)
	b.waitFor("a live refresh", 30*time.Second, `document.getElementById("updated").textContent !== `+strconv.Quote(first), `null`)
	for con.metric(`kafscale_console_samples_total{result="ok"}`) < samplesBefore+5 {
		time.Sleep(200 * time.Millisecond)
	}
	if after := c.revision(t); after != rev {
		t.Errorf("etcd revision moved from %d to %d during the console tour", rev, after)
	}

	// --- a killed broker is shown gone, then back --------------------------------------------
	c.brokers[1].Kill()
	b.waitFor("broker 1 shown gone", 60*time.Second,
		`(() => { const r = document.querySelector('#brokers tr[data-node-id="1"]'); return r && r.dataset.live === "false" && r.querySelector(".liveness").textContent.startsWith("gone")
			&& r.querySelector(".s3-health .unknown"); })()`,
		`document.getElementById("brokers").innerText`)
	b.screenshot("overview-broker-gone")
	c.brokers[1].Start()
	b.waitFor("broker 1 back", 60*time.Second,
		`(() => { const r = document.querySelector('#brokers tr[data-node-id="1"]'); return r && r.dataset.live === "true" && r.querySelector(".s3-health").textContent === "healthy"; })()`,
		`document.getElementById("brokers").innerText`)

	// --- log out and be refused ------------------------------------------------------------
	b.run("log out", chromedp.Click(chromedp.ID("logout")))
	b.waitFor("the login page after logout", 30*time.Second, `!document.getElementById("login").hidden && document.getElementById("view").hidden`, `document.body.innerText`)
	b.open(con.URL + "#/topics")
	b.waitFor("the login page instead of topics", 30*time.Second, `!document.getElementById("login").hidden && !document.getElementById("topics")`, `document.body.innerText`)
	b.screenshot("logged-out")
	cookies, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	var jar []*http.Cookie
	for _, ck := range cookies.Cookies {
		jar = append(jar, &http.Cookie{Name: ck.Name, Value: ck.Value})
	}
	if code, _ := con.get("api/overview", jar...); code != http.StatusUnauthorized {
		t.Errorf("GET api/overview with the browser's cookies after logout = %d, want 401", code)
	}

	// --- nothing went wrong in the page ------------------------------------------------------
	// The one wrong password is the only refused request the page made.
	refusals := 0
	problems := b.problems(func(m chromedp.ConsoleMessage) bool {
		if m.Source == "network" && strings.HasSuffix(m.URL, "/auth/login") && strings.Contains(m.Text, "401") {
			refusals++
			return true
		}
		return false
	})
	if len(problems) != 0 {
		t.Errorf("errors in the page during the tour:\n%s", strings.Join(problems, "\n"))
	}
	if refusals != 1 {
		t.Errorf("%d refused logins logged by the browser, want the 1 wrong password", refusals)
	}
}

func login(b *browser, user, password string) {
	b.t.Helper()
	b.run("log in as "+user,
		chromedp.SetValue(chromedp.ID("login-username"), user),
		chromedp.SetValue(chromedp.ID("login-password"), password),
		chromedp.Click(chromedp.ID("login-submit")))
}

func newClient(t *testing.T, seed string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seed)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produce writes n records, spread evenly over the partitions in turn.
func produce(t *testing.T, ctx context.Context, cl *kgo.Client, n int) {
	t.Helper()
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i % partitions), Key: []byte("k-" + strconv.Itoa(i)), Value: []byte(strings.Repeat("v", 100))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// consume polls until n records arrived, then commits them.
func consume(t *testing.T, ctx context.Context, cl *kgo.Client, n int) {
	t.Helper()
	got := 0
	for got < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records", got, n)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Logf("fetch %s/%d: %v", tp, p, err) })
		got += fs.NumRecords()
	}
	if got != n {
		t.Fatalf("consumed %d records, want %d", got, n)
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

type partitionView struct {
	leaders, epochs map[int32]int32
	ends            map[int32]int64
}

// kafkaView is what Kafka itself reports: each partition's leader, leader epoch and high
// watermark.
func kafkaView(t *testing.T, ctx context.Context, adm *kadm.Client) partitionView {
	t.Helper()
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	leaders, epochs := map[int32]int32{}, map[int32]int32{}
	for _, p := range md.Topics[topic].Partitions {
		leaders[p.Partition], epochs[p.Partition] = p.Leader, p.LeaderEpoch
	}
	lo, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	ends := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
	if len(leaders) != partitions || len(ends) != partitions {
		t.Fatalf("Kafka reports leaders %v and ends %v, want %d partitions", leaders, ends, partitions)
	}
	return partitionView{leaders: leaders, epochs: epochs, ends: ends}
}

// quietRevision waits until etcd's revision holds still for three seconds (the brokers
// have nothing left to write) and returns it.
func quietRevision(t *testing.T, c *cluster) int64 {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	rev := c.revision(t)
	for since := time.Now(); time.Since(since) < 3*time.Second; {
		time.Sleep(250 * time.Millisecond)
		if r := c.revision(t); r != rev {
			rev, since = r, time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatal("etcd's revision kept moving with every client idle")
		}
	}
	return rev
}

func jsonString(t *testing.T, v [][]string) string {
	t.Helper()
	parts := make([]string, len(v))
	for i, row := range v {
		q := make([]string, len(row))
		for j, s := range row {
			q[j] = strconv.Quote(s)
		}
		parts[i] = "[" + strings.Join(q, ",") + "]"
	}
	return "[" + strings.Join(parts, ",") + "]"
}
