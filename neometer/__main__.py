from neometer.cli import main

raise SystemExit(main())
