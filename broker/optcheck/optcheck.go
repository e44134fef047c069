// Package optcheck collects the problems of a package's options for its Validate method:
// every problem at once, each naming the package and the field. The broker's packages check
// their options with it and fill nothing in; the defaults live in broker/config alone.
package optcheck

import (
	"errors"
	"fmt"
)

// Problems are the problems found so far in one package's options.
type Problems struct {
	pkg  string
	errs []error
}

// New starts the check of package pkg's options.
func New(pkg string) *Problems { return &Problems{pkg: pkg} }

// Failf records a problem.
func (p *Problems) Failf(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf(p.pkg+": "+format, args...))
}

// Err returns every problem recorded, joined, or nil.
func (p *Problems) Err() error { return errors.Join(p.errs...) }

// Number is what Positive and NotNegative check.
type Number interface {
	~int | ~int32 | ~int64 | ~float64
}

// Positive records a problem when v, the value of field, is not above zero.
func Positive[T Number](p *Problems, field string, v T) {
	if v <= 0 {
		p.Failf("%s must be positive, not %v", field, v)
	}
}

// NotNegative records a problem when v, the value of field, is below zero; why says what
// zero means.
func NotNegative[T Number](p *Problems, field string, v T, why string) {
	if v < 0 {
		p.Failf("%s %v is negative (%s)", field, v, why)
	}
}
