package commands

import (
	"context"
	"os"
	"regexp"
	"slices"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/fnhq/fn/project"
)

// Shell completion of the names a command takes: the project's functions, identities and
// timers, the environments, and the apps and secrets on the fn server. A completion that cannot
// find its names (no project, not logged in) offers none rather than failing.

// completionTimeout bounds a completion's call to the fn server, so that a slow or unreachable
// server never hangs the shell.
const completionTimeout = 2 * time.Second

type completer func(f *Factory, cmd *cobra.Command) []string

// argCompletions are the positional argument completions, by command path.
var argCompletions = map[string]completer{
	"fn invoke":         functionNames,
	"fn apps delete":    appNames,
	"fn secrets unset":  secretNames,
	"fn timers trigger": timerNames,
	"fn timers enable":  timerNames,
	"fn timers disable": timerNames,
}

// flagCompletions are flag value completions, by flag name, for every command that has the flag.
var flagCompletions = map[string]completer{
	"env":      func(*Factory, *cobra.Command) []string { return slices.Clone(Envs) },
	"as":       identityNames,
	"app":      appNames,
	"function": functionNames,
	"template": func(*Factory, *cobra.Command) []string { return []string{"wx", "lean"} },
	"lang":     func(*Factory, *cobra.Command) []string { return []string{"js", "ts"} },
	"level":    func(*Factory, *cobra.Command) []string { return []string{"debug", "info", "warn", "error"} },
	"color":    func(*Factory, *cobra.Command) []string { return []string{"auto", "always", "never"} },
}

// registerCompletions wires the completers into the command tree.
func registerCompletions(f *Factory, root *cobra.Command) {
	walk(root, func(c *cobra.Command) {
		if comp, ok := argCompletions[c.CommandPath()]; ok && c.ValidArgsFunction == nil {
			c.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				if len(args) > 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return comp(f, cmd), cobra.ShellCompDirectiveNoFileComp
			}
		}
		for name, comp := range flagCompletions {
			if c.LocalNonPersistentFlags().Lookup(name) == nil && c.PersistentFlags().Lookup(name) == nil {
				continue
			}
			if _, exists := c.GetFlagCompletionFunc(name); exists {
				continue
			}
			c.RegisterFlagCompletionFunc(name, func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				return comp(f, cmd), cobra.ShellCompDirectiveNoFileComp
			})
		}
	})
}

func completionProject(f *Factory) *project.Project {
	p, err := project.Load(f.Global.ProjectDir)
	if err != nil {
		return nil
	}
	return p
}

// leanDefine finds the names of a lean project's cloud functions in its entry's source.
var leanDefine = regexp.MustCompile(`Cloud\.define\(\s*['"]([^'"]+)['"]`)

func functionNames(f *Factory, _ *cobra.Command) []string {
	p := completionProject(f)
	if p == nil {
		return nil
	}
	entries, err := p.Entries()
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		if p.Dialect != project.Lean {
			names = append(names, e.Name)
			continue
		}
		src, err := os.ReadFile(e.Path)
		if err != nil {
			continue
		}
		for _, m := range leanDefine.FindAllSubmatch(src, -1) {
			if n := string(m[1]); !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	return names
}

func identityNames(f *Factory, _ *cobra.Command) []string {
	if p := completionProject(f); p != nil {
		return p.IdentityNames()
	}
	return nil
}

func timerNames(f *Factory, _ *cobra.Command) []string {
	p := completionProject(f)
	if p == nil {
		return nil
	}
	var names []string
	for _, t := range p.Timers {
		names = append(names, t.Name)
	}
	return names
}

func appNames(f *Factory, cmd *cobra.Command) []string {
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	c, err := f.Client(ctx)
	if err != nil {
		return nil
	}
	apps, err := c.Apps(ctx)
	if err != nil {
		return nil
	}
	var names []string
	for _, a := range apps {
		names = append(names, a.Name)
	}
	return names
}

func secretNames(f *Factory, cmd *cobra.Command) []string {
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	app, _ := cmd.Flags().GetString("app")
	c, app, err := appClient(ctx, f, app)
	if err != nil {
		return nil
	}
	names, err := c.SecretNames(ctx, app)
	if err != nil {
		return nil
	}
	return names
}
