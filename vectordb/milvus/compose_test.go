package milvus

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// TestComposeFile validates docker-compose.yml with the Compose reference loader (no
// Docker engine here): the services exist, have healthchecks and ports, start in order,
// and give the app the environment it reads.
func TestComposeFile(t *testing.T) {
	path, _ := filepath.Abs("../../docker-compose.yml")
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  filepath.Dir(path),
		ConfigFiles: []types.ConfigFile{{Filename: path}},
		Environment: map[string]string{},
	}, func(o *loader.Options) { o.SetProjectName("loopmatch", true) })
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	svc := map[string]types.ServiceConfig{}
	for _, s := range p.Services {
		svc[s.Name] = s
	}
	for name := range p.DisabledServices {
		svc[name] = p.DisabledServices[name]
	}
	for _, name := range []string{"etcd", "minio", "milvus", "ingest", "serve"} {
		s, ok := svc[name]
		if !ok {
			t.Fatalf("service %s missing", name)
		}
		if s.Image != "" && (strings.HasSuffix(s.Image, ":latest") || !strings.Contains(s.Image, ":")) {
			t.Errorf("%s: image %q is not pinned to a tag", name, s.Image)
		}
		if name != "ingest" && (s.HealthCheck == nil || len(s.HealthCheck.Test) == 0) {
			t.Errorf("%s: no healthcheck", name)
		}
	}
	if !strings.HasPrefix(svc["milvus"].Image, "milvusdb/milvus:v2.4.") {
		t.Errorf("milvus image %q: want a v2.4 server, the line milvus-sdk-go v2.4.2 supports", svc["milvus"].Image)
	}
	ports := func(s types.ServiceConfig) map[uint32]bool {
		m := map[uint32]bool{}
		for _, p := range s.Ports {
			m[p.Target] = true
		}
		return m
	}
	if pm := ports(svc["milvus"]); !pm[19530] || !pm[9091] {
		t.Errorf("milvus ports %v: want 19530 and 9091", svc["milvus"].Ports)
	}
	if pm := ports(svc["serve"]); !pm[8080] {
		t.Errorf("serve ports %v: want 8080", svc["serve"].Ports)
	}
	for _, name := range []string{"ingest", "serve"} {
		s := svc[name]
		if s.Build == nil {
			t.Errorf("%s: not built from the Dockerfile", name)
		}
		env := s.Environment
		want := map[string]string{
			"LOOPMATCH_STORE":  "milvus://milvus:19530",
			"LOOPMATCH_BUNDLE": "/opt/loopmatch/models/loopmatch-v2",
			"ONNXRUNTIME_LIB":  "/opt/onnxruntime/lib/libonnxruntime.so",
		}
		for k, v := range want {
			if got := env[k]; got == nil || *got != v {
				t.Errorf("%s: %s = %v, want %s", name, k, got, v)
			}
		}
		if dep, ok := s.DependsOn["milvus"]; !ok || dep.Condition != types.ServiceConditionHealthy {
			t.Errorf("%s: must wait for a healthy milvus", name)
		}
	}
	if dep := svc["milvus"].DependsOn; dep["etcd"].Condition != types.ServiceConditionHealthy || dep["minio"].Condition != types.ServiceConditionHealthy {
		t.Errorf("milvus must wait for healthy etcd and minio")
	}
}
