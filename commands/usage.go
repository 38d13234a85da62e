package commands

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/agnivade/levenshtein"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// argNounKey is the annotation that names what a command's positional argument is ("a function
// name"), so that a missing argument is reported in the command's own words.
const argNounKey = "fn/arg-noun"

// needs sets the noun a command's missing argument error uses.
func needs(c *cobra.Command, noun string) *cobra.Command {
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[argNounKey] = noun
	return c
}

// usageLine is "fn invoke <function>": the command's use line without the flags.
func usageLine(c *cobra.Command) string {
	return strings.TrimSpace(strings.TrimSuffix(c.UseLine(), "[flags]"))
}

// argsError words a failed argument check for people: what is missing or too much, and the
// command's use line.
func argsError(c *cobra.Command, args []string, inner cobra.PositionalArgs) error {
	path := c.CommandPath()
	if len(args) == 0 {
		noun := c.Annotations[argNounKey]
		if noun == "" {
			noun = "an argument"
		}
		return usageErrorf("%s needs %s: %s", path, noun, usageLine(c))
	}
	// too many: find how many the command takes
	most := 0
	for k := len(args) - 1; k >= 0; k-- {
		if inner(c, args[:k]) == nil {
			most = k
			break
		}
	}
	extra := args[most:]
	quoted := make([]string, len(extra))
	for i, a := range extra {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	switch most {
	case 0:
		return usageErrorf("%s takes no arguments, got %s", path, strings.Join(quoted, " "))
	case 1:
		return usageErrorf("%s takes one argument, got %d (unexpected %s): %s", path, len(args), strings.Join(quoted, " "), usageLine(c))
	}
	return usageErrorf("%s takes %d arguments, got %d (unexpected %s): %s", path, most, len(args), strings.Join(quoted, " "), usageLine(c))
}

// wrapArgs turns cobra's argument-count errors into worded usage errors (exit 2).
func wrapArgs(c *cobra.Command) {
	if c.Args == nil || c.HasSubCommands() {
		return
	}
	inner := c.Args
	c.Args = func(cmd *cobra.Command, args []string) error {
		if err := inner(cmd, args); err != nil {
			return argsError(cmd, args, inner)
		}
		return nil
	}
}

// groupCommand makes a command that only holds subcommands (fn timers, fn apps) print its help
// when called alone and fail with a suggestion, exit 2, for an unknown subcommand.
func groupCommand(c *cobra.Command) {
	if !c.HasSubCommands() || c.Run != nil || c.RunE != nil {
		return
	}
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2
	}
	c.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf("; did you mean %q?", cmd.CommandPath()+" "+s[0])
		} else {
			var names []string
			for _, sub := range cmd.Commands() {
				if sub.IsAvailableCommand() {
					names = append(names, sub.Name())
				}
			}
			msg += "; its commands are " + strings.Join(names, ", ")
		}
		return &UsageError{Err: errors.New(msg)}
	}
	c.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
}

// walk visits c and every command below it.
func walk(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, sub := range c.Commands() {
		walk(sub, fn)
	}
}

// flagError words pflag's parse errors: which flag, what was wrong, what it takes, and for a
// mistyped flag the closest one the command has.
func flagError(cmd *cobra.Command, err error) error {
	var invalid *pflag.InvalidValueError
	var notExist *pflag.NotExistError
	var needValue *pflag.ValueRequiredError
	switch {
	case errors.As(err, &invalid):
		return usageErrorf("invalid value %q for --%s: %s", invalid.GetValue(), invalid.GetFlag().Name, expectation(invalid.GetFlag()))
	case errors.As(err, &needValue):
		return usageErrorf("--%s needs a value: %s", needValue.GetFlag().Name, expectation(needValue.GetFlag()))
	case errors.As(err, &notExist):
		name := notExist.GetSpecifiedName()
		if notExist.GetSpecifiedShortnames() != "" {
			return usageErrorf("unknown flag -%s for %s", name, cmd.CommandPath())
		}
		msg := fmt.Sprintf("unknown flag --%s for %s", name, cmd.CommandPath())
		if s := closestFlag(cmd, name); s != "" {
			msg += fmt.Sprintf("; did you mean --%s?", s)
		}
		return usageErrorf("%s", msg)
	}
	return &UsageError{Err: err}
}

// expectation says what a flag's value must look like.
func expectation(fl *pflag.Flag) string {
	if fl.Name == "port" {
		return "must be a number 0–65535 (0 picks a free port)"
	}
	switch fl.Value.Type() {
	case "int", "int64", "int32", "uint", "uint64":
		return "must be a whole number"
	case "bool":
		return "must be true or false"
	case "duration":
		return "must be a duration such as 30s, 5m or 1h"
	case "float64", "float32":
		return "must be a number"
	}
	return fl.Usage
}

// closestFlag is the command's flag nearest to a mistyped name, or "" when none is close.
func closestFlag(cmd *cobra.Command, typed string) string {
	type cand struct {
		name string
		d    int
	}
	var cands []cand
	cmd.Flags().VisitAll(func(fl *pflag.Flag) {
		if fl.Hidden {
			return
		}
		d := levenshtein.ComputeDistance(typed, fl.Name)
		if d <= 2 || (len(typed) >= 3 && strings.HasPrefix(fl.Name, typed)) {
			cands = append(cands, cand{fl.Name, d})
		}
	})
	if len(cands) == 0 {
		return ""
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].d != cands[j].d {
			return cands[i].d < cands[j].d
		}
		return cands[i].name < cands[j].name
	})
	return cands[0].name
}
