from ltipro.cli import main

raise SystemExit(main())
