pytest_plugins = ["tests.fixtures.samba", "tests.fixtures.s3", "tests.fixtures.stack",
                  "tests.fixtures.ldap", "tests.fixtures.graph", "tests.fixtures.smtp",
                  "tests.fixtures.browser", "tests.fixtures.in_process"]
