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

func TestValidateRejects(t *testing.T) {
	s := loadSpec(t)
	tests := []struct {
		name, method, path, body, want string
	}{
		{"unknown field", "PUT", "/machine-config", `{"vcpu_count":2,"mem_size_mib":256,"foo":1}`,
			deser + "unknown field `foo`, expected one of `cpu_template`, `smt`, `mem_size_mib`, `track_dirty_pages`, `vcpu_count`, `huge_pages`."},
		{"wrong type", "PUT", "/machine-config", `{"vcpu_count":"2","mem_size_mib":256}`,
			deser + "vcpu_count: invalid type: string \"2\", expected an unsigned integer."},
		{"float for integer", "PUT", "/machine-config", `{"vcpu_count":1.5,"mem_size_mib":256}`,
			deser + "vcpu_count: invalid type: floating point `1.5`, expected an unsigned integer."},
		{"missing required", "PUT", "/machine-config", `{"mem_size_mib":256}`,
			deser + "missing field `vcpu_count`."},
		{"below minimum", "PUT", "/machine-config", `{"vcpu_count":0,"mem_size_mib":256}`,
			"Invalid value for `vcpu_count`: 0 is less than the minimum 1."},
		{"above maximum", "PUT", "/machine-config", `{"vcpu_count":33,"mem_size_mib":256}`,
			"Invalid value for `vcpu_count`: 33 is more than the maximum 32."},
		{"enum", "PUT", "/machine-config", `{"vcpu_count":1,"mem_size_mib":256,"huge_pages":"1G"}`,
			deser + "huge_pages: unknown variant `1G`, expected one of `None`, `Transparent`, `2M`."},
		{"empty body", "PUT", "/actions", ``, "Empty PUT request."},
		{"unknown action", "PUT", "/actions", `{"action_type":"Reboot"}`,
			deser + "action_type: unknown variant `Reboot`, expected one of `FlushMetrics`, `InstanceStart`, `SendCtrlAltDel`."},
		{"drive id mismatch", "PUT", "/drives/rootfs", `{"drive_id":"work","is_root_device":false,"path_on_host":"/x","is_read_only":false}`,
			"The id from the path does not match the id from the body!"},
		{"drive id with dash", "PUT", "/drives/root-fs", `{"drive_id":"root-fs","is_root_device":true}`,
			"API Resource IDs can only contain alphanumeric characters and underscores."},
		{"empty drive id", "PUT", "/drives/", `{"drive_id":"","is_root_device":true}`, "The ID cannot be empty."},
		{"drive missing root flag", "PUT", "/drives/rootfs", `{"drive_id":"rootfs","path_on_host":"/x","is_read_only":true}`,
			deser + "missing field `is_root_device`."},
		{"drive cache type", "PUT", "/drives/rootfs", `{"drive_id":"rootfs","is_root_device":true,"cache_type":"Fast"}`,
			deser + "cache_type: unknown variant `Fast`, expected `Unsafe` or `Writeback`."},
		{"drive root as string", "PUT", "/drives/rootfs", `{"drive_id":"rootfs","is_root_device":"yes"}`,
			deser + "is_root_device: invalid type: string \"yes\", expected a boolean."},
		{"vsock cid reserved", "PUT", "/vsock", `{"guest_cid":2,"uds_path":"/tmp/v.sock"}`,
			"Invalid value for `guest_cid`: 2 is less than the minimum 3."},
		{"vsock cid negative", "PUT", "/vsock", `{"guest_cid":-3,"uds_path":"/tmp/v.sock"}`,
			deser + "guest_cid: invalid value: integer `-3`, expected an unsigned integer."},
		{"vsock missing uds", "PUT", "/vsock", `{"guest_cid":3}`, deser + "missing field `uds_path`."},
		{"net mtu", "PUT", "/network-interfaces/eth0", `{"iface_id":"eth0","host_dev_name":"tap0","mtu":20}`,
			"Invalid value for `mtu`: 20 is less than the minimum 68."},
		{"nested rate limiter", "PUT", "/network-interfaces/eth0", `{"iface_id":"eth0","host_dev_name":"tap0","rx_rate_limiter":{"bandwidth":{"refill_time":100}}}`,
			deser + "rx_rate_limiter.bandwidth: missing field `size`."},
		{"metrics properties", "PUT", "/metrics", `{"metrics_path":"/m","properties":{"a":1}}`,
			deser + "properties.a: invalid type: integer `1`, expected a string."},
		{"logger level", "PUT", "/logger", `{"level":"Loud"}`,
			deser + "level: unknown variant `Loud`, expected one of `Error`, `Warning`, `Info`, `Debug`, `Trace`, `Off`."},
		{"duplicate key", "PUT", "/boot-source", `{"kernel_image_path":"/k","kernel_image_path":"/k"}`,
			deser + "duplicate field `kernel_image_path`."},
		{"trailing data", "PUT", "/boot-source", `{"kernel_image_path":"/k"} 1`, deser + "trailing characters."},
		{"not an object", "PUT", "/boot-source", `[1]`, deser + "invalid type: sequence, expected a map."},
		{"null required", "PUT", "/boot-source", `{"kernel_image_path":null}`,
			deser + "kernel_image_path: invalid type: null, expected a string."},
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
		{"PUT", "/boot-source", `{"kernel_image_path":"/k","boot_args":"console=ttyS0","initrd_path":null}`},
		{"PUT", "/drives/rootfs", `{"drive_id":"rootfs","path_on_host":"/r","is_root_device":true,"is_read_only":false,"io_engine":"Async"}`},
		{"PUT", "/network-interfaces/eth0", `{"iface_id":"eth0","host_dev_name":"tap0","guest_mac":"06:00:ac:10:00:02","mtu":1500}`},
		{"PUT", "/vsock", `{"guest_cid":3,"uds_path":"/tmp/v.sock"}`},
		{"PUT", "/metrics", `{"metrics_path":"/m","properties":{"vm":"web"}}`},
		{"PUT", "/mmds", `{"latest":{"meta-data":{"any":[1,2,{"x":null}]}}}`},
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
