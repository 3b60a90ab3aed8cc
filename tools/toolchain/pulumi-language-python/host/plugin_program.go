// Compiled into the v3.68 Python language host by scripts/toolchain (build_language_host), beside
// the host's own main.go, whose RunPlugin builds its python arguments with pluginArgs.
//
// Why: since about v3.100 the CLI names a plugin's program in RunPluginRequest.info (a
// ProgramInfo) and leaves the deprecated `program` empty. The v3.68 host predates `info`, so it
// ran a policy pack as `python "" <engine>` and never learned which pack it was. Newer hosts
// run `python -m pulumi.policy <engine> <pack directory>`; this does the same, reading `info`
// and `kind` from the request's unknown fields, so `--policy-pack DIR` runs the pack in DIR.
package main

import (
	"google.golang.org/protobuf/encoding/protowire"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// Field numbers in pulumirpc's RunPluginRequest and ProgramInfo (pulumi/language.proto).
const (
	runPluginInfoField    protowire.Number = 5
	runPluginKindField    protowire.Number = 6
	programDirectoryField protowire.Number = 2
)

// pluginArgs returns python's arguments for a RunPlugin request.
func pluginArgs(req *pulumirpc.RunPluginRequest) []string {
	if req.Program == "" {
		info, kind := unknownBytes(req.ProtoReflect().GetUnknown(), runPluginInfoField, runPluginKindField)
		dir, _ := unknownBytes(info, programDirectoryField, 0)
		if string(kind) == "analyzer" && len(dir) > 0 && len(req.Args) > 0 {
			return []string{"-u", "-m", "pulumi.policy", req.Args[0], string(dir)}
		}
	}
	return append([]string{req.Program}, req.Args...)
}

// unknownBytes returns the last values of two length-delimited fields in a protobuf message.
func unknownBytes(message []byte, first, second protowire.Number) (a, b []byte) {
	for len(message) > 0 {
		number, wireType, n := protowire.ConsumeTag(message)
		if n < 0 {
			return a, b
		}
		message = message[n:]
		if wireType == protowire.BytesType {
			value, m := protowire.ConsumeBytes(message)
			if m < 0 {
				return a, b
			}
			switch number {
			case first:
				a = value
			case second:
				b = value
			}
			message = message[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(number, wireType, message)
		if m < 0 {
			return a, b
		}
		message = message[m:]
	}
	return a, b
}
