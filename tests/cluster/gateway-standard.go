// Command gateway-standard turns the CRDs that controller-gen generates from sigs.k8s.io/gateway-api's
// API types (every channel's fields at once) into the Gateway API *standard* release channel.
//
// tests/cluster/crds.sh copies this file into its throwaway Go module and runs it as
//
//	gateway-standard IN_DIR OUT_DIR
//
// Gateway API selects its channels in its own generator (tools/generator, a module of its own that the Go
// module proxy does not serve), which runs controller-tools as a library and then applies the rules below.
// controller-gen produces the same schemas before those rules, so this program applies them after it:
//   - only the standard kinds are kept; their alpha versions stay listed but are not served;
//   - fields whose description carries <gateway:experimental> are removed;
//   - <gateway:standard:validation:Enum=...|Pattern=`...`|XValidation:...> become enum, pattern, CEL rules;
//   - <gateway:validateIPAddress> becomes the oneOf that checks IP addresses;
//   - the bundle-version, channel and api-approved annotations are set (the API server refuses a CRD in
//     a *.k8s.io group without api-approved.kubernetes.io);
//   - descriptions lose the experimental-only text and the <gateway:...> tags.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	apiext "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/gateway-api/pkg/consts"
	"sigs.k8s.io/yaml"
)

const channel = "standard"

// The kinds of the standard channel: the project's generator keeps the same fixed list.
var standardKinds = map[string]bool{
	"BackendTLSPolicy": true, "Gateway": true, "GatewayClass": true, "GRPCRoute": true, "HTTPRoute": true,
	"ListenerSet": true, "ReferenceGrant": true, "TCPRoute": true, "TLSRoute": true, "UDPRoute": true,
}

var (
	validationPrefix = "<gateway:" + channel + ":validation:"
	enumTag          = regexp.MustCompile(regexp.QuoteMeta(validationPrefix) + `Enum=([A-Za-z;]*)>`)
	celTag           = regexp.MustCompile(regexp.QuoteMeta(validationPrefix) + `XValidation:message="([^"]*)",rule="([^"]*)">`)
	patternTag       = regexp.MustCompile(regexp.QuoteMeta(validationPrefix) + "Pattern=`([^`]*)`")
	experimentalText = block("<gateway:experimental:description>", "</gateway:experimental:description>")
	excludedText     = block("<gateway:util:excludeFromCRD>", "</gateway:util:excludeFromCRD>")
	anyTag           = regexp.MustCompile(`<gateway:.*>`)
	blankLines       = regexp.MustCompile(`\n\n\n+`)
)

func block(start, end string) *regexp.Regexp {
	return regexp.MustCompile(`\n*` + regexp.QuoteMeta(start) + `(?s:.*?)` + regexp.QuoteMeta(end) + `\n*`)
}

// manifest is a CRD as it is applied: no status.
type manifest struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitzero"`
	Spec              apiext.CustomResourceDefinitionSpec `json:"spec"`
}

func main() {
	if len(os.Args) != 3 {
		fail(fmt.Errorf("usage: gateway-standard IN_DIR OUT_DIR"))
	}
	paths, err := filepath.Glob(filepath.Join(os.Args[1], "*.yaml"))
	if err != nil {
		fail(err)
	}
	sort.Strings(paths)
	kept := 0
	for _, path := range paths {
		wrote, err := convert(path, os.Args[2])
		if err != nil {
			fail(fmt.Errorf("%s: %w", path, err))
		}
		if wrote {
			kept++
		}
	}
	if kept != len(standardKinds) {
		fail(fmt.Errorf("found %d of the %d standard kinds in %s", kept, len(standardKinds), os.Args[1]))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gateway-standard:", err)
	os.Exit(1)
}

func convert(path, outDir string) (bool, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	var crd apiext.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(raw, &crd); err != nil {
		return false, err
	}
	if crd.Spec.Group != "gateway.networking.k8s.io" || !standardKinds[crd.Spec.Names.Kind] {
		return false, nil
	}
	if crd.Annotations == nil {
		crd.Annotations = map[string]string{}
	}
	crd.Annotations[consts.BundleVersionAnnotation] = consts.BundleVersion
	crd.Annotations[consts.ChannelAnnotation] = channel
	crd.Annotations[apiext.KubeAPIApprovedAnnotation] = consts.ApprovalLink
	for i := range crd.Spec.Versions {
		version := &crd.Spec.Versions[i]
		if strings.Contains(version.Name, "alpha") {
			version.Served = false
		}
		if version.Schema == nil || version.Schema.OpenAPIV3Schema == nil {
			return false, fmt.Errorf("version %s has no schema", version.Name)
		}
		if err := tweakAll(version.Schema.OpenAPIV3Schema.Properties); err != nil {
			return false, fmt.Errorf("version %s: %w", version.Name, err)
		}
	}
	out, err := yaml.Marshal(manifest{TypeMeta: crd.TypeMeta, ObjectMeta: crd.ObjectMeta, Spec: crd.Spec})
	if err != nil {
		return false, err
	}
	return true, os.WriteFile(filepath.Join(outDir, filepath.Base(path)), out, 0o644)
}

func tweakAll(props map[string]apiext.JSONSchemaProps) error {
	for name, prop := range props {
		keep, err := tweak(name, &prop)
		if err != nil {
			return err
		}
		if keep {
			props[name] = prop
		} else {
			delete(props, name)
		}
	}
	return nil
}

// tweak applies the channel's rules to one field; false means the field is not in this channel.
func tweak(name string, prop *apiext.JSONSchemaProps) (bool, error) {
	if strings.Contains(prop.Description, "<gateway:validateIPAddress>") {
		if prop.Items == nil || prop.Items.Schema == nil {
			return false, fmt.Errorf("%s: <gateway:validateIPAddress> on a field that is not a list", name)
		}
		ipAddress := []apiext.JSON{{Raw: []byte(`"IPAddress"`)}}
		prop.Items.Schema.OneOf = []apiext.JSONSchemaProps{
			{Properties: map[string]apiext.JSONSchemaProps{
				"type":  {Enum: ipAddress},
				"value": {AnyOf: []apiext.JSONSchemaProps{{Format: "ipv4"}, {Format: "ipv6"}}},
			}},
			{Properties: map[string]apiext.JSONSchemaProps{"type": {Not: &apiext.JSONSchemaProps{Enum: ipAddress}}}},
		}
	}
	if strings.Contains(prop.Description, "<gateway:experimental>") {
		return false, nil
	}
	if prop.Format == "date-time" {
		prop.Type = "string"
	}
	expected := strings.Count(prop.Description, validationPrefix)
	applied := 0
	for _, m := range enumTag.FindAllStringSubmatch(prop.Description, -1) {
		prop.Enum = nil
		for _, value := range strings.Split(m[1], ";") {
			prop.Enum = append(prop.Enum, apiext.JSON{Raw: []byte(`"` + value + `"`)})
		}
		applied++
	}
	for _, m := range celTag.FindAllStringSubmatch(prop.Description, -1) {
		prop.XValidations = append(prop.XValidations, apiext.ValidationRule{Message: m[1], Rule: m[2]})
		applied++
	}
	if m := patternTag.FindAllStringSubmatch(prop.Description, -1); len(m) == 1 && prop.Pattern == "" {
		prop.Pattern = m[0][1]
		applied++
	}
	if applied < expected {
		// A tag this program does not understand: stop rather than produce a looser schema.
		return false, fmt.Errorf("%s: %d %s tags, %d understood", name, expected, validationPrefix, applied)
	}
	prop.Description = describe(prop.Description)
	if len(prop.Properties) > 0 {
		return true, tweakAll(prop.Properties)
	}
	if prop.Items != nil && prop.Items.Schema != nil {
		keep, err := tweak(name, prop.Items.Schema)
		if err != nil || !keep {
			return false, err
		}
	}
	return true, nil
}

func describe(text string) string {
	text = experimentalText.ReplaceAllString(text, "\n\n")
	text = excludedText.ReplaceAllString(text, "\n\n\n")
	text = anyTag.ReplaceAllLiteralString(text, "")
	text = blankLines.ReplaceAllString(text, "\n\n\n")
	return strings.Trim(text, "\n")
}
