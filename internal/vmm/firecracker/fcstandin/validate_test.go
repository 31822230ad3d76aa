package fcstandin

import (
	"path/filepath"
	"sync"
	"testing"
)

// specPath is the in-repo copy of the API spec.
var specPath = filepath.Join("..", "testdata", "firecracker-api.yaml")

var (
	specOnce sync.Once
	spec     *Spec
	specErr  error
)

func loadSpec(t *testing.T) *Spec {
	t.Helper()
	specOnce.Do(func() { spec, specErr = LoadSpec(specPath) })
	if specErr != nil {
		t.Fatal(specErr)
	}
	return spec
}

func TestSpecParses(t *testing.T) {
	s := loadSpec(t)
	if s.Version == "" {
		t.Error("spec has no version")
	}
	op, params := s.match("PUT", "/drives/rootfs")
	if op == nil || op.Path != "/drives/{drive_id}" || params["drive_id"] != "rootfs" {
		t.Fatalf("match PUT /drives/rootfs = %v, %v", op, params)
	}
	if op.Body == nil || !op.BodyRequired {
		t.Fatal("PUT /drives/{drive_id} has no required body")
	}
	if got, want := op.Body.Required, []string{"drive_id", "is_root_device"}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("Drive required = %v, want %v", got, want)
	}
	if rl := op.Body.Properties["rate_limiter"]; rl == nil || rl.Properties["bandwidth"] == nil || rl.Properties["bandwidth"].Properties["size"] == nil {
		t.Error("Drive.rate_limiter.bandwidth.size not resolved through $refs")
	}
	if n := len(s.Operations()); n < 30 {
		t.Errorf("spec has %d operations, want at least 30", n)
	}
}

const deser = "An error occurred when deserializing the json body of a request: "

// TestValidateRejects checks the fault_message of bodies Firecracker
// refuses: serde_json's errors, wrapped by Firecracker and ending with
// serde's position (the column counts the bytes of the line read before
// the error), then Firecracker's own checks.
func TestValidateRejects(t *testing.T) {
	s := loadSpec(t)
	tests := []struct {
		name, method, path, body, want string
	}{
		{"unknown field", "PUT", "/machine-config", `{"vcpu_count":2,"mem_size_mib":256,"foo":1}`,
			deser + "unknown field `foo`, expected one of `cpu_template`, `smt`, `mem_size_mib`, `track_dirty_pages`, `vcpu_count`, `huge_pages` at line 1 column 40."},
		{"unknown field before a bad value", "PUT", "/machine-config", `{"foo":"x","vcpu_count":"2"}`,
			deser + "unknown field `foo`, expected one of `cpu_template`, `smt`, `mem_size_mib`, `track_dirty_pages`, `vcpu_count`, `huge_pages` at line 1 column 6."},
		{"wrong type", "PUT", "/machine-config", `{"vcpu_count":"2","mem_size_mib":256}`,
			deser + "invalid type: string \"2\", expected u8 at line 1 column 17."},
		{"float for integer", "PUT", "/machine-config", `{"vcpu_count":1.5,"mem_size_mib":256}`,
			deser + "invalid type: floating point `1.5`, expected u8 at line 1 column 17."},
		{"exponent for integer", "PUT", "/machine-config", `{"vcpu_count":1,"mem_size_mib":1e3}`,
			deser + "invalid type: floating point `1000.0`, expected usize at line 1 column 34."},
		{"integer too large for u8", "PUT", "/machine-config", `{"vcpu_count":256,"mem_size_mib":256}`,
			deser + "invalid value: integer `256`, expected u8 at line 1 column 17."},
		{"integer too large for u64", "PUT", "/balloon", `{"amount_mib":1,"deflate_on_oom":true,"stats_polling_interval_s":18446744073709551616}`,
			deser + "invalid type: floating point `18446744073709552000.0`, expected u64 at line 1 column 85."},
		{"missing required", "PUT", "/machine-config", `{"mem_size_mib":256}`,
			deser + "missing field `vcpu_count` at line 1 column 20."},
		{"enum", "PUT", "/machine-config", `{"vcpu_count":1,"mem_size_mib":256,"huge_pages":"1G"}`,
			deser + "unknown variant `1G`, expected one of `None`, `Transparent`, `2M` at line 1 column 52."},
		{"enum not a string", "PUT", "/machine-config", `{"vcpu_count":1,"mem_size_mib":256,"huge_pages":2}`,
			deser + "expected value at line 1 column 49."},
		{"empty body", "PUT", "/actions", ``, "Empty PUT request."},
		{"unknown action", "PUT", "/actions", `{"action_type":"Reboot"}`,
			deser + "unknown variant `Reboot`, expected one of `FlushMetrics`, `InstanceStart`, `SendCtrlAltDel` at line 1 column 23."},
		{"drive id mismatch", "PUT", "/drives/rootfs", `{"drive_id":"work","is_root_device":false,"path_on_host":"/x","is_read_only":false}`,
			"The id from the path does not match the id from the body!"},
		{"drive id with dash", "PUT", "/drives/root-fs", `{"drive_id":"root-fs","is_root_device":true}`,
			"API Resource IDs can only contain alphanumeric characters and underscores."},
		{"empty drive id", "PUT", "/drives/", `{"drive_id":"","is_root_device":true}`, "The ID cannot be empty."},
		{"drive missing root flag", "PUT", "/drives/rootfs", `{"drive_id":"rootfs","path_on_host":"/x","is_read_only":true}`,
			deser + "missing field `is_root_device` at line 1 column 61."},
		{"drive cache type", "PUT", "/drives/rootfs", `{"drive_id":"rootfs","is_root_device":true,"cache_type":"Fast"}`,
			deser + "unknown variant `Fast`, expected `Unsafe` or `Writeback` at line 1 column 62."},
		{"drive root as string", "PUT", "/drives/rootfs", `{"drive_id":"rootfs","is_root_device":"yes"}`,
			deser + "invalid type: string \"yes\", expected a boolean at line 1 column 43."},
		{"vsock cid reserved", "PUT", "/vsock", `{"guest_cid":2,"uds_path":"/tmp/v.sock"}`,
			"Invalid value for `guest_cid`: 2 is less than the minimum 3."},
		{"vsock cid negative", "PUT", "/vsock", `{"guest_cid":-3,"uds_path":"/tmp/v.sock"}`,
			deser + "invalid value: integer `-3`, expected u32 at line 1 column 15."},
		{"vsock missing uds", "PUT", "/vsock", `{"guest_cid":3}`, deser + "missing field `uds_path` at line 1 column 15."},
		{"net mtu", "PUT", "/network-interfaces/eth0", `{"iface_id":"eth0","host_dev_name":"tap0","mtu":20}`,
			"Invalid value for `mtu`: 20 is less than the minimum 68."},
		{"net bad mac", "PUT", "/network-interfaces/eth0", `{"iface_id":"eth0","guest_mac":"06:00:zz","host_dev_name":"tap0"}`,
			deser + "The provided MAC address is invalid. at line 1 column 41."},
		{"net bad mac last", "PUT", "/network-interfaces/eth0", `{"iface_id":"eth0","host_dev_name":"tap0","guest_mac":"x"}`,
			deser + "The provided MAC address is invalid. at line 1 column 58."},
		{"nested rate limiter", "PUT", "/network-interfaces/eth0", `{"iface_id":"eth0","host_dev_name":"tap0","rx_rate_limiter":{"bandwidth":{"refill_time":100}}}`,
			deser + "missing field `size` at line 1 column 92."},
		{"nested unknown field", "PUT", "/drives/rootfs", `{"drive_id":"rootfs","is_root_device":true,"rate_limiter":{"bw":{}}}`,
			deser + "unknown field `bw`, expected `bandwidth` or `ops` at line 1 column 63."},
		{"metrics properties", "PUT", "/metrics", `{"metrics_path":"/m","properties":{"a":1}}`,
			deser + "invalid type: integer `1`, expected a string at line 1 column 40."},
		{"logger level", "PUT", "/logger", `{"level":"Loud"}`,
			deser + "unknown variant `Loud`, expected one of `Error`, `Warning`, `Info`, `Debug`, `Trace`, `Off` at line 1 column 15."},
		{"duplicate key", "PUT", "/boot-source", `{"kernel_image_path":"/k","kernel_image_path":"/k"}`,
			deser + "duplicate field `kernel_image_path` at line 1 column 45."},
		{"trailing data", "PUT", "/boot-source", `{"kernel_image_path":"/k"} 1`, deser + "trailing characters at line 1 column 28."},
		{"not an object", "PUT", "/boot-source", `"/k"`, deser + "invalid type: string \"/k\", expected struct BootSource at line 1 column 4."},
		{"null required", "PUT", "/boot-source", `{"kernel_image_path":null}`,
			deser + "invalid type: null, expected a string at line 1 column 25."},
		{"second line", "PUT", "/boot-source", "{\n  \"kernel_image_path\": \"/k\",\n  \"boot_args\": 7\n}",
			deser + "invalid type: integer `7`, expected a string at line 3 column 16."},
		{"eof in object", "PUT", "/boot-source", `{"kernel_image_path":"/k"`, deser + "EOF while parsing an object at line 1 column 25."},
		{"eof after comma", "PUT", "/boot-source", `{"kernel_image_path":"/k",`, deser + "EOF while parsing a value at line 1 column 26."},
		{"eof in string", "PUT", "/boot-source", `{"kernel_image_path":"/k`, deser + "EOF while parsing a string at line 1 column 24."},
		{"trailing comma", "PUT", "/boot-source", `{"kernel_image_path":"/k",}`, deser + "trailing comma at line 1 column 27."},
		{"key not a string", "PUT", "/boot-source", `{kernel_image_path:"/k"}`, deser + "key must be a string at line 1 column 2."},
		{"no colon", "PUT", "/boot-source", `{"kernel_image_path" "/k"}`, deser + "expected `:` at line 1 column 22."},
		{"no comma", "PUT", "/boot-source", `{"kernel_image_path":"/k" "boot_args":""}`, deser + "expected `,` or `}` at line 1 column 27."},
		{"bad literal", "PUT", "/drives/rootfs", `{"drive_id":"rootfs","is_root_device":tru}`, deser + "expected ident at line 1 column 42."},
		{"bad number", "PUT", "/machine-config", `{"vcpu_count":01,"mem_size_mib":256}`, deser + "invalid number at line 1 column 16."},
		{"not json", "PUT", "/boot-source", `kernel`, deser + "expected value at line 1 column 1."},
		{"get with body", "GET", "/version", `{}`, "GET request cannot have a body."},
		{"unknown path", "PUT", "/nope", `{}`, "Invalid request method and/or path: PUT nope."},
		{"unknown method", "DELETE", "/drives/rootfs", ``, "Invalid request method and/or path: DELETE drives."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, f := s.Validate(tt.method, tt.path, []byte(tt.body))
			if f == nil {
				t.Fatalf("%s %s %s: accepted, want %q", tt.method, tt.path, tt.body, tt.want)
			}
			if f.Status != 400 || f.Message != tt.want {
				t.Errorf("%s %s %s:\n got %d %q\nwant 400 %q", tt.method, tt.path, tt.body, f.Status, f.Message, tt.want)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	s := loadSpec(t)
	tests := []struct{ method, path, body string }{
		{"GET", "/", ""},
		{"GET", "/machine-config", ""},
		{"PUT", "/machine-config", `{"vcpu_count":2,"mem_size_mib":512,"smt":false,"huge_pages":"2M"}`},
		// vcpu_count's bounds are the machine's to check, in its own words.
		{"PUT", "/machine-config", `{"vcpu_count":0,"mem_size_mib":512}`},
		{"PUT", "/machine-config", `{"vcpu_count":33,"mem_size_mib":-0}`},
		{"PUT", "/machine-config", " {\"vcpu_count\" : 2 ,\n\t\"mem_size_mib\":512, \"huge_pages\": null } "},
		{"PUT", "/boot-source", `{"kernel_image_path":"/k","boot_args":"console=ttyS0","initrd_path":null}`},
		{"PUT", "/drives/rootfs", `{"drive_id":"rootfs","path_on_host":"/r","is_root_device":true,"is_read_only":false,"io_engine":"Async"}`},
		{"PUT", "/network-interfaces/eth0", `{"iface_id":"eth0","host_dev_name":"tap0","guest_mac":"06:00:ac:10:00:02","mtu":1500}`},
		{"PUT", "/vsock", `{"guest_cid":3,"uds_path":"/tmp/v.sock"}`},
		{"PUT", "/metrics", `{"metrics_path":"/m","properties":{"vm":"web"}}`},
		{"PUT", "/mmds", `{"latest":{"meta-data":{"any":[1,2.5e3,-7,{"x":null,"x":"\u00e9\ud83d\ude00"}]}}}`},
		{"PUT", "/actions", `{"action_type":"InstanceStart"}`},
		{"PATCH", "/vm", `{"state":"Paused"}`},
	}
	for _, tt := range tests {
		if _, f := s.Validate(tt.method, tt.path, []byte(tt.body)); f != nil {
			t.Errorf("%s %s %s: %v", tt.method, tt.path, tt.body, f)
		}
	}
}

func TestParseFailures(t *testing.T) {
	got, err := ParseFailures("PUT /drives/rootfs=500, put /vsock,PUT /logger=503:after")
	if err != nil {
		t.Fatal(err)
	}
	want := []Failure{{"PUT", "/drives/rootfs", 500, false}, {"PUT", "/vsock", 400, false}, {"PUT", "/logger", 503, true}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("ParseFailures = %v, want %v", got, want)
	}
	for _, bad := range []string{"PUT", "PUT drives", "PUT /x=200", "PUT /x=abc"} {
		if _, err := ParseFailures(bad); err == nil {
			t.Errorf("ParseFailures(%q) succeeded", bad)
		}
	}
}
