from actr.cli import main

raise SystemExit(main())
