// monitoring-check reads monitoring artefacts the way their consumers do, for
// test/integration/monitoring.test.ts:
//
//	monitoring-check promql   < ["expr", ...]      the metric names and label names each PromQL
//	                                                expression uses, parsed by Prometheus' own parser
//	monitoring-check objects  < [{object}, ...]     each ServiceMonitor, PodMonitor or PrometheusRule
//	                                                decoded strictly into the Prometheus Operator's
//	                                                Go types (an unknown or mistyped field is an error)
//
// Both print one JSON array on stdout, one entry per input, in order.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/prometheus/promql/parser"
)

// Selector is one vector selector: the metric it names and the labels its matchers test.
type Selector struct {
	Metric string   `json:"metric"`
	Labels []string `json:"labels"`
}

// Expression is what one PromQL expression reads.
type Expression struct {
	Expr      string     `json:"expr"`
	Error     string     `json:"error,omitempty"`
	Selectors []Selector `json:"selectors"`
	// Grouping holds the labels of by (...), on (...) and group_left/right (...) clauses.
	Grouping []string `json:"grouping"`
}

func inspectExpr(p parser.Parser, input string) Expression {
	out := Expression{Expr: input, Selectors: []Selector{}, Grouping: []string{}}
	expr, err := p.ParseExpr(input)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	grouping := map[string]bool{}
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.VectorSelector:
			s := Selector{Metric: n.Name, Labels: []string{}}
			for _, m := range n.LabelMatchers {
				if m.Name != "__name__" {
					s.Labels = append(s.Labels, m.Name)
				}
			}
			out.Selectors = append(out.Selectors, s)
		case *parser.AggregateExpr:
			if !n.Without {
				for _, l := range n.Grouping {
					grouping[l] = true
				}
			}
		case *parser.BinaryExpr:
			if n.VectorMatching != nil {
				if n.VectorMatching.On {
					for _, l := range n.VectorMatching.MatchingLabels {
						grouping[l] = true
					}
				}
				for _, l := range n.VectorMatching.Include {
					grouping[l] = true
				}
			}
		}
		return nil
	})
	for l := range grouping {
		out.Grouping = append(out.Grouping, l)
	}
	sort.Strings(out.Grouping)
	return out
}

// Object is the outcome of decoding one object.
type Object struct {
	Kind  string `json:"kind"`
	Name  string `json:"name"`
	Error string `json:"error,omitempty"`
}

func decodeStrict(raw json.RawMessage, into any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	return d.Decode(into)
}

func checkObject(raw json.RawMessage) Object {
	var meta struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return Object{Error: err.Error()}
	}
	out := Object{Kind: meta.Kind, Name: meta.Metadata.Name}
	var into any
	switch meta.Kind {
	case monitoringv1.ServiceMonitorsKind:
		into = &monitoringv1.ServiceMonitor{}
	case monitoringv1.PodMonitorsKind:
		into = &monitoringv1.PodMonitor{}
	case monitoringv1.PrometheusRuleKind:
		into = &monitoringv1.PrometheusRule{}
	default:
		out.Error = fmt.Sprintf("not a kind this tool checks: %q", meta.Kind)
		return out
	}
	if err := decodeStrict(raw, into); err != nil {
		out.Error = err.Error()
	}
	return out
}

func run(mode string, in io.Reader) (any, error) {
	switch mode {
	case "promql":
		var exprs []string
		if err := json.NewDecoder(in).Decode(&exprs); err != nil {
			return nil, fmt.Errorf("stdin: a JSON array of strings: %w", err)
		}
		p := parser.NewParser(parser.Options{})
		out := make([]Expression, 0, len(exprs))
		for _, e := range exprs {
			out = append(out, inspectExpr(p, e))
		}
		return out, nil
	case "objects":
		var objects []json.RawMessage
		if err := json.NewDecoder(in).Decode(&objects); err != nil {
			return nil, fmt.Errorf("stdin: a JSON array of objects: %w", err)
		}
		out := make([]Object, 0, len(objects))
		for _, o := range objects {
			out = append(out, checkObject(o))
		}
		return out, nil
	}
	return nil, fmt.Errorf("usage: monitoring-check promql|objects < JSON")
}

func main() {
	mode := ""
	if len(os.Args) == 2 {
		mode = os.Args[1]
	}
	out, err := run(mode, os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "monitoring-check:", err)
		os.Exit(2)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "monitoring-check:", err)
		os.Exit(1)
	}
}
