"""JuistePlek: regional capacity coordination for acute follow-up care."""
