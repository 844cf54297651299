"""Every word spoken or texted, per language (fr, nl, de, en), and the speech engines.

Filled in by the IVR issue; the package exists so the layout matches ARCHITECTURE.md.
"""
