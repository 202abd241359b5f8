// The control plane the extension talks to by default. `make dist`
// writes the operator's address here (CONTROL_URL=https://vpn.example);
// the popup lets the user change it.
export const defaultControl = "http://127.0.0.1:8080";
