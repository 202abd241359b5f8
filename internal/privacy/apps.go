package privacy

// App is a program of Veil's that runs on the customer's device.
type App string

// The apps.
const (
	// AppClient is the veil command (veil login, veil connect, …).
	AppClient App = "client"
	// AppWireGuard is the official WireGuard app with a file from Veil.
	AppWireGuard App = "wireguard"
)

// Transmission is one thing an app sends, declared once: the apps'
// privacy policy is rendered from this list, and the tests check that
// what it says is stored is a category of the Inventory.
type Transmission struct {
	App App
	// What and When are message ids of the site's catalogues.
	What, When string
	// To is "control" (the control plane's API) or "gateway".
	To string
	// Stored is the Inventory category the data ends up in; empty: it is
	// used and not stored.
	Stored string
}

// Sent is everything the apps send.
var Sent = []Transmission{
	{App: AppClient, What: "apps.code", When: "apps.when.login", To: "control", Stored: "sessions"},
	{App: AppClient, What: "apps.device", When: "apps.when.connect", To: "control", Stored: "devices"},
	{App: AppClient, What: "apps.block", When: "apps.when.block", To: "control", Stored: "devices"},
	{App: AppClient, What: "apps.report", When: "apps.when.connect", To: "control", Stored: "client_counters"},
	{App: AppClient, What: "apps.check", When: "apps.when.check", To: "control"},
	{App: AppClient, What: "apps.tunnel", When: "apps.when.connected", To: "gateway"},
	{App: AppClient, What: "apps.dns", When: "apps.when.connected", To: "gateway"},
	{App: AppWireGuard, What: "apps.tunnel", When: "apps.when.connected", To: "gateway"},
	{App: AppWireGuard, What: "apps.dns", When: "apps.when.connected", To: "gateway"},
}
