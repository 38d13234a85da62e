// The console's code editor: CodeMirror 6 with JavaScript highlighting, bundled by esbuild into
// ../../dist/editor.js (make console). Diagnostics come from the server's esbuild check.
import { EditorState } from "@codemirror/state";
import { EditorView, keymap, lineNumbers, highlightActiveLine, drawSelection } from "@codemirror/view";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { javascript } from "@codemirror/lang-javascript";
import { syntaxHighlighting, defaultHighlightStyle, bracketMatching, indentOnInput } from "@codemirror/language";
import { setDiagnostics, lintGutter } from "@codemirror/lint";
import { searchKeymap } from "@codemirror/search";
import { closeBrackets, closeBracketsKeymap } from "@codemirror/autocomplete";

export function createEditor(parent, { doc = "", onChange, label = "Code" } = {}) {
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: [
        lineNumbers(), history(), drawSelection(), highlightActiveLine(), indentOnInput(), bracketMatching(),
        closeBrackets(), lintGutter(), javascript(), syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        // Tab indents; Escape then Tab leaves the editor (CodeMirror's keyboard escape hatch)
        keymap.of([indentWithTab, ...closeBracketsKeymap, ...defaultKeymap, ...historyKeymap, ...searchKeymap]),
        EditorView.contentAttributes.of({ "aria-label": label }),
        EditorView.updateListener.of((u) => { if (u.docChanged && onChange) onChange(); }),
      ],
    }),
  });
  return {
    kind: "codemirror",
    view,
    get: () => view.state.doc.toString(),
    set(text) { view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } }); },
    focus() { view.focus(); },
    // errors: [{line, column, text}] with 1-based lines and 0-based columns (esbuild's)
    diagnostics(errors) {
      const d = view.state.doc;
      const list = (errors || []).map((e) => {
        const ln = d.line(Math.min(Math.max(e.line || 1, 1), d.lines));
        const from = Math.min(ln.from + Math.max(e.column || 0, 0), ln.to);
        return { from, to: Math.min(from + 1, ln.to), severity: "error", message: e.text || "error" };
      });
      view.dispatch(setDiagnostics(view.state, list));
    },
  };
}
