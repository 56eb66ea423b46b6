package gitproxy

import "testing"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		method, path, service string
		want                  request
		err                   error
	}{
		{"GET", "/git/github/octocat/hello-world.git/info/refs", "git-upload-pack", request{"github", "octocat/hello-world", ServiceUploadPack, true}, nil},
		{"POST", "/git/github/octocat/hello-world.git/git-upload-pack", "", request{"github", "octocat/hello-world", ServiceUploadPack, false}, nil},
		{"GET", "/git/github/octocat/hello-world.git/info/refs", "git-receive-pack", request{"github", "octocat/hello-world", ServiceReceivePack, true}, nil},
		{"POST", "/git/github/octocat/hello-world.git/git-receive-pack", "", request{"github", "octocat/hello-world", ServiceReceivePack, false}, nil},
		{"GET", "/git/gitlab/group/sub/subsub/app.git/info/refs", "git-upload-pack", request{"gitlab", "group/sub/subsub/app", ServiceUploadPack, true}, nil},
		{"GET", "/git/github/octocat/hello-world/info/refs", "git-upload-pack", request{"github", "octocat/hello-world", ServiceUploadPack, true}, nil},
		{"GET", "/git/github/octo.cat/hello_world-2.git/info/refs", "git-upload-pack", request{"github", "octo.cat/hello_world-2", ServiceUploadPack, true}, nil},
		// Refused.
		{"GET", "/git/github/octocat/hello-world.git/info/refs", "", request{}, errNotSmart},
		{"GET", "/git/github/octocat/hello-world.git/info/refs", "git-upload-archive", request{}, errNotSmart},
		{"POST", "/git/github/octocat/hello-world.git/info/refs", "git-upload-pack", request{}, errNotSmart},
		{"GET", "/git/github/octocat/hello-world.git/git-upload-pack", "", request{}, errNotSmart},
		{"GET", "/git/github/octocat/hello-world.git/HEAD", "", request{}, errNotSmart},
		{"GET", "/git/github/octocat/hello-world.git/objects/info/packs", "", request{}, errNotSmart},
		{"GET", "/git/github/hello-world.git/info/refs", "git-upload-pack", request{}, errShape},
		{"GET", "/git/GitHub/octocat/hello-world.git/info/refs", "git-upload-pack", request{}, errShape},
		{"GET", "/git//octocat/hello-world.git/info/refs", "git-upload-pack", request{}, errShape},
		{"GET", "/gitx/github/octocat/hello-world.git/info/refs", "git-upload-pack", request{}, errShape},
		{"GET", "/git/github/octocat/../hello-world.git/info/refs", "git-upload-pack", request{}, errChars},
		{"GET", "/git/github/octocat/./hello-world.git/info/refs", "git-upload-pack", request{}, errChars},
		{"GET", "/git/github/octocat%2Fhello-world.git/info/refs", "git-upload-pack", request{}, errChars},
		{"GET", "/git/github/octocat/%2e%2e/info/refs", "git-upload-pack", request{}, errChars},
		{"GET", "/git/github/octocat\\hello/x.git/info/refs", "git-upload-pack", request{}, errChars},
		{"GET", "/git/github/https:/evil.example/x.git/info/refs", "git-upload-pack", request{}, errChars},
		{"GET", "/git/github/octocat//hello.git/info/refs", "git-upload-pack", request{}, errChars},
		{"GET", "/git/github/octo cat/hello.git/info/refs", "git-upload-pack", request{}, errChars},
		{"GET", "/git/github/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u.git/info/refs", "git-upload-pack", request{}, errShape},
	} {
		got, err := parse(tc.method, tc.path, tc.service)
		if err != tc.err || got != tc.want {
			t.Errorf("parse(%s %s ?service=%s) = %+v, %v; want %+v, %v", tc.method, tc.path, tc.service, got, err, tc.want, tc.err)
		}
	}
}

func TestErrPacket(t *testing.T) {
	if got := string(errPacket("no\nway")); got != "000fERR no way\n" {
		t.Fatalf("%q", got)
	}
}
